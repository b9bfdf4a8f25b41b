package main_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/testhelpers"
)

// readmeSection returns the fenced blocks of the given language in the
// README section whose heading starts with heading.
func readmeSection(t *testing.T, heading, lang string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i := strings.Index(text, "\n## "+heading)
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	section := text[i+1:]
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	var blocks []string
	for {
		k := strings.Index(section, "```"+lang+"\n")
		if k < 0 {
			return blocks
		}
		section = section[k+len(lang)+4:]
		end := strings.Index(section, "```")
		blocks = append(blocks, section[:end])
		section = section[end+3:]
	}
}

// privateDaemon is a client of the first daemon the test scripts started
// (IMGUTIL_DOCKER_HOSTS) on a unix socket (which the README's client.FromEnv
// reaches with DOCKER_HOST alone): the README's names (my-app, run:1) are
// made and removed there, never in a daemon the tests did not start.
func privateDaemon(t *testing.T) *client.Client {
	t.Helper()
	if os.Getenv(testhelpers.DaemonsEnv) == "" {
		t.Skipf("%s is not set: the README's names are only used in the test daemons", testhelpers.DaemonsEnv)
	}
	for _, d := range testhelpers.DockerDaemons(t) {
		if strings.HasPrefix(d.Client.DaemonHost(), "unix://") {
			return d.Client
		}
	}
	t.Skipf("no daemon of %s is on a unix socket", testhelpers.DaemonsEnv)
	return nil
}

// TestReadmeWalkthrough runs the command line walkthrough of README.md as
// it is written, each shell block in turn, in an empty directory, against
// a test daemon, a test registry (in place of registry.example.com) and,
// when one runs, a test containerd.
func TestReadmeWalkthrough(t *testing.T) {
	c := privateDaemon(t)
	blocks := readmeSection(t, "Command line", "sh")
	if len(blocks) < 3 {
		t.Fatalf("README's walkthrough has %d shell blocks, want 3", len(blocks))
	}
	reg := testhelpers.StartRegistry(t)
	names := []string{"my-app:latest", "run:1", "run:2", "app-on-run:1"}
	for _, n := range names {
		testhelpers.DockerCleanup(t, c, n)
	}
	dir := t.TempDir()
	env := append(os.Environ(), testhelpers.DaemonEnv(c.DaemonHost())...)
	env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	containerd := ""
	if hosts := os.Getenv("IMGUTIL_CONTAINERD_HOSTS"); hosts != "" {
		_, containerd, _ = strings.Cut(strings.Split(hosts, ",")[0], "=")
		env = append(env, "CONTAINERD_ADDRESS="+containerd)
	}
	for i, b := range blocks {
		if strings.Contains(b, "containerd://") && containerd == "" {
			t.Logf("block %d skipped: no containerd", i)
			continue
		}
		script := "set -euo pipefail\n" + strings.ReplaceAll(b, "registry.example.com", reg.Host)
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README walkthrough block %d failed: %v\n%s\n--- output:\n%s", i, err, b, out)
		}
		t.Logf("block %d:\n%s", i, out)
	}
	pushed := reg.Get(t, "team/my-app:latest")
	testhelpers.CheckImage(t, pushed)
	if containerd != "" {
		t.Cleanup(func() {
			_ = exec.Command("ctr", "--address", containerd, "-n", "k8s.io", "images", "rm", "docker.io/library/my-app:latest").Run()
		})
	}
}

// TestReadmeGoQuickStart compiles the Go quick start of README.md as it
// is written and runs it twice against a test daemon: first a build on a
// base, then a rebuild that reuses the first one's layer by diffID.
func TestReadmeGoQuickStart(t *testing.T) {
	c := privateDaemon(t)
	blocks := readmeSection(t, "Quick start: a Docker daemon", "go")
	if len(blocks) != 1 {
		t.Fatalf("README's Go quick start has %d blocks, want 1", len(blocks))
	}
	for _, n := range []string{"my-base:latest", "my-app:latest", "my-app:1.2.3"} {
		testhelpers.DockerCleanup(t, c, n)
	}
	testhelpers.DockerPut(t, c, "my-base:latest", testhelpers.BusyboxImage(t, imgutil.DockerTypes))
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(blocks[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "quickstart")
	build := exec.Command("go", "build", "-o", exe, src)
	build.Dir = filepath.Join("..", "..") // the library's module
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the quick start does not build: %v\n%s", err, out)
	}
	writeTar(t, filepath.Join(dir, "code.tar"), "workspace/app.sh", "echo v1\n")
	run := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(exe)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), testhelpers.DaemonEnv(c.DaemonHost())...), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the quick start failed: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "saved") {
		t.Fatalf("quick start: %s", out)
	}
	first, err := c.ImageInspect(context.Background(), "my-app:latest")
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := c.ImageInspect(context.Background(), "my-app:1.2.3")
	if err != nil || tagged.ID != first.ID || first.Config.Labels["version"] != "1.2.3" {
		t.Fatalf("my-app:1.2.3 is %s (%v), my-app:latest %s with labels %v", tagged.ID, err, first.ID, first.Config.Labels)
	}
	layers := first.RootFS.Layers
	writeTar(t, filepath.Join(dir, "code.tar"), "workspace/app.sh", "echo v2\n")
	run("DEPS_DIFFID=" + layers[len(layers)-1])
	second, err := c.ImageInspect(context.Background(), "my-app:latest")
	if err != nil {
		t.Fatal(err)
	}
	if got := second.RootFS.Layers; len(got) != len(layers)+1 || got[len(got)-2] != layers[len(layers)-1] {
		t.Errorf("the rebuild's layers %v: want the first build's code layer reused under the new one", got)
	}
}

func writeTar(t *testing.T, path, name, content string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
