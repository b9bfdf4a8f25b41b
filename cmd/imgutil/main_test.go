package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/testhelpers"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cli-bin-*")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "imgutil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the built binary and returns stdout, stderr and the exit code.
func cli(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func ok(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, env, args...)
	if code != 0 {
		t.Fatalf("imgutil %v: exit %d: %s", args, code, errOut)
	}
	return out
}

type inspected struct {
	Config struct {
		Labels map[string]string
	} `json:"config"`
	Layers []struct {
		DiffID string `json:"diffID"`
	} `json:"layers"`
}

func inspect(t *testing.T, env []string, target string) (inspected, []string) {
	t.Helper()
	var got inspected
	if err := json.Unmarshal([]byte(ok(t, env, "inspect", target)), &got); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range got.Layers {
		ids = append(ids, l.DiffID)
	}
	return got, ids
}

func TestLayoutCommands(t *testing.T) {
	dir := t.TempDir()
	base := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	testhelpers.LayoutPut(t, filepath.Join(dir, "base"), base)
	newBase := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	testhelpers.LayoutPut(t, filepath.Join(dir, "base2"), newBase)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "run"), []byte("#!/bin/sh\necho app\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := "oci:" + filepath.Join(dir, "app")

	ok(t, nil, "append", "--base", "oci:"+filepath.Join(dir, "base"), "--layer", src, "--prefix", "workspace", app)
	_, ids := inspect(t, nil, app)
	if want := len(testhelpers.DiffIDs(t, base)) + 1; len(ids) != want {
		t.Fatalf("after append: %d layers, want %d", len(ids), want)
	}
	ok(t, nil, "mutate", "--label", "version=1.2", "--env", "MODE=prod", "--entrypoint", "/workspace/bin/run", app)
	got, _ := inspect(t, nil, app)
	if got.Config.Labels["version"] != "1.2" {
		t.Fatalf("after mutate: labels %v", got.Config.Labels)
	}
	// Flags may follow the target.
	ok(t, nil, "mutate", app, "--label", "after=target")
	if got, _ := inspect(t, nil, app); got.Config.Labels["after"] != "target" || got.Config.Labels["version"] != "1.2" {
		t.Fatalf("after mutate with flags after the target: labels %v", got.Config.Labels)
	}
	out := filepath.Join(dir, "app.tar")
	ok(t, nil, "export", app, "-o", out)
	loaded, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	testhelpers.CheckImage(t, loaded)

	// A typo in the new base's name fails before anything is saved.
	_, before := inspect(t, nil, app)
	if _, errOut, code := cli(t, nil, "rebase", "--old-base", "oci:"+filepath.Join(dir, "base"), "--new-base", "oci:"+filepath.Join(dir, "typo-base"), app); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("rebase onto a missing base: exit %d: %s", code, errOut)
	}
	if _, after := inspect(t, nil, app); !slices.Equal(after, before) {
		t.Fatalf("a failed rebase changed the image: %v, was %v", after, before)
	}

	ok(t, nil, "rebase", "--old-base", "oci:"+filepath.Join(dir, "base"), "--new-base", "oci:"+filepath.Join(dir, "base2"), app)
	_, rebased := inspect(t, nil, app)
	want := append(testhelpers.DiffIDs(t, newBase), ids[len(ids)-1])
	if !slices.Equal(rebased, want) {
		t.Fatalf("after rebase: %v, want %v", rebased, want)
	}
}

func TestErrors(t *testing.T) {
	if _, _, code := cli(t, nil, "bogus"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, _, code := cli(t, nil, "inspect"); code != 2 {
		t.Errorf("inspect without a target: exit %d, want 2", code)
	}
	_, errOut, code := cli(t, nil, "inspect", "oci:"+filepath.Join(t.TempDir(), "missing"))
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("inspect of a missing image: exit %d, stderr %q; want 1 and one line saying not found", code, errOut)
	}
	// Usage mistakes exit 2, before anything is opened or saved.
	dir := t.TempDir()
	for _, args := range [][]string{
		{"inspect", "docker://Not A Valid:Ref:"},
		{"append", "--layer", dir, "--tag", "", "oci:" + filepath.Join(dir, "app")},
		{"append", "--layer", dir, "--tag", "oci:" + filepath.Join(dir, "other"), "docker://imgutil-cli/never:saved"},
		{"export", "-o", dir, "oci:" + filepath.Join(dir, "app")},
	} {
		if _, errOut, code := cli(t, nil, args...); code != 2 {
			t.Errorf("imgutil %q: exit %d (%s), want 2", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused append saved something")
	}
	if out, _, code := cli(t, nil, "--help"); code != 0 || !strings.Contains(out, "docker://") {
		t.Errorf("--help: exit %d: %s", code, out)
	}
	// Options are listed as the examples write them.
	if _, errOut, code := cli(t, nil, "append", "--help"); code != 0 || !strings.Contains(errOut, "\n  --base string") || strings.Contains(errOut, "\n  -base") {
		t.Errorf("append --help: exit %d: %s", code, errOut)
	}
	// Errors that say what to do.
	if _, errOut, code := cli(t, nil, "inspect", "docker://My-App:Latest"); code != 2 || !strings.Contains(errOut, "lowercase: docker://my-app:Latest") {
		t.Errorf("an uppercase name: exit %d: %s", code, errOut)
	}
	// A name with no prefix is Docker Hub's (unreachable here, or not
	// found): the error says how to name the daemon's image.
	if _, errOut, code := cli(t, []string{"DOCKER_CONFIG=" + dir}, "inspect", "imgutil-never-pushed/app:1"); code != 1 || !strings.Contains(errOut, "docker://NAME") {
		t.Errorf("a name with no prefix: exit %d: %s", code, errOut)
	}
	start := time.Now()
	_, errOut, code = cli(t, []string{"CONTAINERD_ADDRESS=" + filepath.Join(dir, "no.sock")}, "inspect", "containerd://app:1")
	if code != 1 || !strings.Contains(errOut, "CONTAINERD_ADDRESS") || time.Since(start) > 5*time.Second {
		t.Errorf("no containerd at CONTAINERD_ADDRESS: exit %d after %v: %s", code, time.Since(start), errOut)
	}
}

// TestCopyAcrossStores copies a layout image into each daemon and from
// there into a real registry.
func TestCopyAcrossStores(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	dir := t.TempDir()
	src := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), src)
	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		env := testhelpers.DaemonEnv(c.DaemonHost())
		name := "imgutil-cli/copied:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
		testhelpers.DockerCleanup(t, c, name)
		ok(t, env, "copy", "oci:"+filepath.Join(dir, "src"), "docker://"+name)
		res, err := c.ImageInspect(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.RootFS.Layers, testhelpers.DiffIDs(t, src)) {
			t.Fatalf("copied into the daemon: %v", res.RootFS.Layers)
		}
		// Within the daemon, a copy is the same image under a new name.
		twin := name + "-twin"
		testhelpers.DockerCleanup(t, c, twin)
		ok(t, env, "copy", "docker://"+name, "docker://"+twin)
		if got, err := c.ImageInspect(context.Background(), twin); err != nil || got.ID != res.ID {
			t.Fatalf("copy within the daemon: %v, %v; want image %s", got.ID, err, res.ID)
		}
		repo := "cli/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + ":latest"
		ok(t, env, "copy", "docker://"+name, reg.Repo(repo))
		pushed := reg.Get(t, repo)
		testhelpers.CheckImage(t, pushed)
		// Out of the daemon, the config goes byte for byte: where the image
		// ID is the config digest (not the containerd store), it is kept.
		if res.Descriptor == nil {
			if cfg, _ := pushed.ConfigName(); cfg.String() != res.ID {
				t.Errorf("copied out of the daemon, the config is %s; the image was %s", cfg, res.ID)
			}
		}
		// Layers read from the daemon go compressed.
		m, err := pushed.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			if !strings.HasSuffix(string(l.MediaType), "gzip") {
				t.Errorf("layer %s pushed as %s, want gzip", l.Digest, l.MediaType)
			}
		}
		// A registry image copied as it is keeps its digest.
		again := "cli/again-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + ":latest"
		ok(t, env, "copy", reg.Repo(repo), reg.Repo(again))
		want, _ := pushed.Digest()
		if got, _ := reg.Get(t, again).Digest(); got != want {
			t.Errorf("registry copy has digest %s, the source %s", got, want)
		}
	})
	// A layout image copied to a registry keeps its digest too.
	ok(t, nil, "copy", "oci:"+filepath.Join(dir, "src"), reg.Repo("cli/from-layout:latest"))
	want, _ := src.Digest()
	if got, _ := reg.Get(t, "cli/from-layout:latest").Digest(); got != want {
		t.Errorf("layout copy has digest %s, the source %s", got, want)
	}
}

// TestInterruptedExportLeavesNothing: SIGINT mid-export stops the command
// with exit 130 and leaves no temp file nor partial output.
func TestInterruptedExportLeavesNothing(t *testing.T) {
	cli := testhelpers.DockerClient(t)
	name := "imgutil-cli/interrupted:" + strings.ToLower(testhelpers.RandString(8))
	img, err := random.Image(64<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	testhelpers.DockerPut(t, cli, name, img)
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.tar")
	cmd := exec.Command(bin, "export", "-o", out, "docker://"+name)
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), testhelpers.DaemonEnv(cli.DaemonHost())...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the export has started writing.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted export: %v, want exit 130", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("the interrupted export left %d temp entries (first %s)", len(entries), entries[0].Name())
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted export left its output %s", out)
	}
}

// TestTimeoutOnAHungRegistry: a registry that never answers does not hang
// the command: --timeout ends it with an error.
func TestTimeoutOnAHungRegistry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and never answer
		}
	}()
	start := time.Now()
	_, errOut, code := cli(t, nil, "inspect", "--timeout", "2s", l.Addr().String()+"/hung/app:latest")
	if code != 1 || time.Since(start) > 30*time.Second {
		t.Fatalf("inspect of a hung registry: exit %d after %v: %s", code, time.Since(start), errOut)
	}
}

// TestMissingBaseIsAnError: a --base or copy source that does not exist
// (a typo) is an error naming it, and nothing is saved, in a layout, a
// daemon and a registry; without --base, append starts from scratch.
func TestMissingBaseIsAnError(t *testing.T) {
	dir := t.TempDir()
	layer := fileDir(t, dir, "layer", "f", []byte("f"))
	reg := testhelpers.StartRegistry(t)
	check := func(t *testing.T, env []string, missing, dst string, absent func() bool) {
		t.Helper()
		for _, args := range [][]string{
			{"append", "--base", missing, "--layer", layer, dst},
			{"copy", missing, dst},
		} {
			_, errOut, code := cli(t, env, args...)
			if code == 0 || !strings.Contains(errOut, "not found") || !strings.Contains(errOut, strings.TrimPrefix(missing, "docker://")) {
				t.Errorf("imgutil %v: exit %d: %s", args, code, errOut)
			}
			if !absent() {
				t.Fatalf("imgutil %v saved %s", args, dst)
			}
		}
	}
	t.Run("Layout", func(t *testing.T) {
		dst := filepath.Join(dir, "y")
		check(t, nil, "oci:"+filepath.Join(dir, "nope"), "oci:"+dst, func() bool {
			_, err := os.Stat(dst)
			return errors.Is(err, os.ErrNotExist)
		})
		ok(t, nil, "append", "--layer", layer, "oci:"+dst) // from scratch
	})
	t.Run("Registry", func(t *testing.T) {
		dst := reg.Host + "/cli/missing-dst:1"
		check(t, nil, reg.Host+"/cli/nope:typo", dst, func() bool {
			_, errOut, code := cli(t, nil, "inspect", dst)
			return code != 0 && strings.Contains(errOut, "not found")
		})
	})
	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		env := testhelpers.DaemonEnv(c.DaemonHost())
		dst := "imgutil-cli/missing-dst:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
		testhelpers.DockerCleanup(t, c, dst)
		check(t, env, "docker://imgutil-cli/nope:typo", "docker://"+dst, func() bool {
			_, err := c.ImageInspect(context.Background(), dst)
			return err != nil
		})
	})
	forEachContainerd(t, func(t *testing.T, env []string) {
		dst := "containerd://imgutil-test//example.com/imgutil-cli/missing-dst:" + strings.ToLower(testhelpers.RandString(8))
		check(t, env, "containerd://imgutil-test//example.com/imgutil-cli/nope:typo", dst, func() bool {
			_, errOut, code := cli(t, env, "inspect", dst)
			return code != 0 && strings.Contains(errOut, "not found")
		})
	})
}

// TestDaemonAsTheDockerCLIFindsIt: the CLI reaches each test daemon as the
// Docker CLI would, in every way the environment can name it: a Docker
// context (DOCKER_CONTEXT, or the current context of DOCKER_CONFIG), or
// DOCKER_HOST with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, or an ssh://
// DOCKER_HOST; and says which daemon it could not reach.
func TestDaemonAsTheDockerCLIFindsIt(t *testing.T) {
	dir := t.TempDir()
	src := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), src)
	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		name := "imgutil-cli/reached:" + strings.ToLower(testhelpers.RandString(8))
		testhelpers.DockerCleanup(t, c, name)
		ways := map[string][]string{"as the tests reach it": testhelpers.DaemonEnv(c.DaemonHost())}
		if env, ok := testhelpers.DaemonEnvWithoutContext(c.DaemonHost()); ok {
			ways["DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH"] = env
			// The same context as the current one of a configuration.
			cfg := t.TempDir()
			ctxName := ""
			for _, kv := range testhelpers.DaemonEnv(c.DaemonHost()) {
				if v, ok := strings.CutPrefix(kv, "DOCKER_CONTEXT="); ok {
					ctxName = v
				}
			}
			if err := os.CopyFS(filepath.Join(cfg, "contexts"), os.DirFS(filepath.Join(os.Getenv("DOCKER_CONFIG"), "contexts"))); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"currentContext":"`+ctxName+`"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			ways["current context"] = []string{"DOCKER_HOST=", "DOCKER_CONTEXT=", "DOCKER_CONFIG=" + cfg}
		}
		for way, env := range ways {
			ok(t, env, "copy", "oci:"+filepath.Join(dir, "src"), "docker://"+name)
			out := ok(t, env, "inspect", "docker://"+name)
			if !strings.Contains(out, testhelpers.DiffIDs(t, src)[0]) {
				t.Errorf("%s: inspect shows no layer of the image: %s", way, out)
			}
			if _, err := c.ImageRemove(context.Background(), name, client.ImageRemoveOptions{}); err != nil {
				t.Errorf("%s: the copy is not in the daemon: %v", way, err)
			}
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		for env, want := range map[string]string{
			"DOCKER_CONTEXT=no-such-context": "no-such-context",
			"DOCKER_HOST=ftp://nowhere":      "ftp://nowhere",
		} {
			e := []string{env}
			if strings.HasPrefix(env, "DOCKER_CONTEXT") {
				e = append(e, "DOCKER_HOST=")
			}
			_, errOut, code := cli(t, e, "inspect", "docker://busybox:latest")
			if code == 0 || !strings.Contains(errOut, want) {
				t.Errorf("%s: exit %d: %s", env, code, errOut)
			}
		}
	})
}
