package main_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/testhelpers"
)

type inspectOut struct {
	Platform struct {
		OS   string `json:"os"`
		Arch string `json:"architecture"`
	} `json:"platform"`
	Platforms []struct {
		Arch   string `json:"architecture"`
		Digest string `json:"digest"`
	} `json:"platforms"`
	Layers []struct {
		DiffID           string `json:"diffID"`
		Digest           string `json:"digest"`
		Size             int64  `json:"size"`
		UncompressedSize int64  `json:"uncompressedSize"`
		CreatedBy        string `json:"createdBy"`
	} `json:"layers"`
	History []v1.History `json:"history"`
}

func inspectJSON(t *testing.T, env []string, target string) inspectOut {
	t.Helper()
	var out inspectOut
	if err := json.Unmarshal([]byte(ok(t, env, "inspect", target)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// withEmptyStep is img with a history step that made no layer (an ENV)
// between its first layers, as builds write them.
func withEmptyStep(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	h := cfg.History
	cfg.History = append(append(append([]v1.History{}, h[:1]...), v1.History{CreatedBy: "ENV MODE=prod", EmptyLayer: true}), h[1:]...)
	out, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInspectEveryStore: inspect shows, for an image in every store, its
// platform, what made each layer (history with created_by, the steps that
// made no layer marked), each layer's size (in a daemon, the size it
// says; elsewhere digest and stored size), and an index's platforms.
func TestInspectEveryStore(t *testing.T) {
	dir := t.TempDir()
	src := withEmptyStep(t, testhelpers.BusyboxImage(t, imgutil.OCITypes))
	layout := "oci:" + filepath.Join(dir, "src")
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), src)
	want := testhelpers.DiffIDs(t, src)
	srcCfg, err := src.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var madeBy []string // the steps that made layers, in order
	for _, h := range srcCfg.History {
		if !h.EmptyLayer {
			madeBy = append(madeBy, h.CreatedBy)
		}
	}
	check := func(t *testing.T, out inspectOut, stored bool) {
		t.Helper()
		if out.Platform.OS != "linux" || out.Platform.Arch == "" {
			t.Errorf("platform %+v", out.Platform)
		}
		if len(out.Layers) != len(want) {
			t.Fatalf("layers %+v, want %d", out.Layers, len(want))
		}
		for i, l := range out.Layers {
			if l.DiffID != want[i] || l.CreatedBy != madeBy[i] {
				t.Errorf("layer %d: %+v, want diffID %s made by %q", i, l, want[i], madeBy[i])
			}
			if stored && (l.Digest == "" || l.Size == 0) || !stored && l.UncompressedSize == 0 {
				t.Errorf("layer %d: no size: %+v", i, l)
			}
		}
		var steps []string
		for _, h := range out.History {
			steps = append(steps, h.CreatedBy)
			if strings.HasPrefix(h.CreatedBy, "ENV") != h.EmptyLayer {
				t.Errorf("history step %q: empty_layer %v", h.CreatedBy, h.EmptyLayer)
			}
		}
		if len(out.History) != len(want)+1 || !strings.Contains(strings.Join(steps, ","), "ENV MODE=prod") {
			t.Errorf("history %v: want every step, the ENV included", steps)
		}
	}
	t.Run("Layout", func(t *testing.T) { check(t, inspectJSON(t, nil, layout), true) })
	reg := testhelpers.StartRegistry(t)
	t.Run("Registry", func(t *testing.T) {
		ok(t, nil, "copy", layout, reg.Repo("cli/inspected:1"))
		check(t, inspectJSON(t, nil, reg.Repo("cli/inspected:1")), true)
	})
	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		env := testhelpers.DaemonEnv(c.DaemonHost())
		name := "imgutil-cli/inspected:" + strings.ToLower(testhelpers.RandString(8))
		testhelpers.DockerCleanup(t, c, name)
		ok(t, env, "copy", layout, "docker://"+name)
		check(t, inspectJSON(t, env, "docker://"+name), false)
	})
	forEachContainerd(t, func(t *testing.T, env []string) {
		target := "containerd://imgutil-test//example.com/imgutil-cli/inspected:" + strings.ToLower(testhelpers.RandString(8))
		ok(t, env, "copy", layout, target)
		check(t, inspectJSON(t, env, target), true)
	})
	t.Run("IndexPlatforms", func(t *testing.T) {
		arm, err := mutate.ConfigFile(src, func() *v1.ConfigFile {
			cfg, _ := src.ConfigFile()
			cfg = cfg.DeepCopy()
			cfg.Architecture = "arm64"
			return cfg
		}())
		if err != nil {
			t.Fatal(err)
		}
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: src, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
		p, err := ggcrlayout.Write(filepath.Join(dir, "multi"), empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(idx); err != nil {
			t.Fatal(err)
		}
		out := inspectJSON(t, nil, "oci:"+filepath.Join(dir, "multi"))
		if len(out.Platforms) != 2 || out.Platforms[0].Arch != "amd64" || out.Platforms[1].Arch != "arm64" || out.Platforms[1].Digest == "" {
			t.Errorf("platforms %+v, want amd64 and arm64 with their digests", out.Platforms)
		}
	})
}

// TestRebaseInDaemon: a rebase in each daemon keeps the new base's history
// for its layers, and reads nothing of the daemon's archives twice.
func TestRebaseInDaemon(t *testing.T) {
	dir := t.TempDir()
	src := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), src)
	app := fileDir(t, dir, "app", "run.sh", []byte("echo hi\n"))
	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		env := testhelpers.DaemonEnv(c.DaemonHost())
		repo := "imgutil-cli/rebase-" + strings.ToLower(testhelpers.RandString(8))
		run1, run2, img := "docker://"+repo+"-run:1", "docker://"+repo+"-run:2", "docker://"+repo+"-app:1"
		for _, n := range []string{run1, run2, img} {
			testhelpers.DockerCleanup(t, c, strings.TrimPrefix(n, "docker://"))
		}
		ok(t, env, "copy", "oci:"+filepath.Join(dir, "src"), run1)
		ok(t, env, "append", "--base", run1, "--layer", app, "--prefix", "patch", run2)
		ok(t, env, "append", "--base", run1, "--layer", app, "--prefix", "workspace", img)
		_, errOut, code := cli(t, env, "rebase", "--old-base", run1, "--new-base", run2, img)
		if code != 0 {
			t.Fatalf("rebase: exit %d: %s", code, errOut)
		}
		// What is read of the daemon's archive to find the app's layer
		// (which, on a new parent, a classic store needs sent) is read
		// once: no entry twice.
		seen := map[string]bool{}
		for _, line := range strings.Split(errOut, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "download" {
				if seen[f[1]] {
					t.Errorf("rebase read %s twice: %s", f[1], errOut)
				}
				seen[f[1]] = true
			}
		}
		out := inspectJSON(t, env, img)
		base := inspectJSON(t, env, run2)
		if len(out.Layers) != len(base.Layers)+1 {
			t.Fatalf("rebased: %d layers, want the new base's %d and the app's", len(out.Layers), len(base.Layers))
		}
		for i, l := range base.Layers {
			if out.Layers[i].DiffID != l.DiffID || out.Layers[i].CreatedBy != l.CreatedBy || l.CreatedBy == "" {
				t.Errorf("layer %d: %+v, want the new base's %+v with its history", i, out.Layers[i], l)
			}
		}
	})
}

// TestPrintedDigestIsTheRegistrys: after a save to a registry, the digest
// the command prints is the one the registry holds (Docker-Content-Digest),
// for a base from every store: a layout, a registry, each daemon, each
// containerd; for copy and for append.
func TestPrintedDigestIsTheRegistrys(t *testing.T) {
	dir := t.TempDir()
	src := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	layoutSrc := "oci:" + filepath.Join(dir, "src")
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), src)
	app := fileDir(t, dir, "app", "f", []byte("f"))
	reg := testhelpers.StartRegistry(t)
	n := 0
	check := func(t *testing.T, env []string, base string) {
		t.Helper()
		for _, args := range [][]string{{"copy", base}, {"append", "--base", base, "--layer", app}} {
			n++
			repo := fmt.Sprintf("cli/digest-%d:1", n)
			out := ok(t, env, append(args, reg.Repo(repo))...)
			ref, err := name.ParseReference(reg.Repo(repo))
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(ref)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "@"+desc.Digest.String()+")") {
				t.Errorf("imgutil %v printed %q; the registry holds %s", args, strings.TrimSpace(out), desc.Digest)
			}
		}
	}
	t.Run("Layout", func(t *testing.T) { check(t, nil, layoutSrc) })
	t.Run("Registry", func(t *testing.T) {
		ok(t, nil, "copy", layoutSrc, reg.Repo("cli/digest-src:1"))
		check(t, nil, reg.Repo("cli/digest-src:1"))
	})
	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		env := testhelpers.DaemonEnv(c.DaemonHost())
		img := "imgutil-cli/digest-src:" + strings.ToLower(testhelpers.RandString(8))
		testhelpers.DockerCleanup(t, c, img)
		ok(t, env, "copy", layoutSrc, "docker://"+img)
		check(t, env, "docker://"+img)
	})
	forEachContainerd(t, func(t *testing.T, env []string) {
		img := "containerd://imgutil-test//example.com/imgutil-cli/digest-src:" + strings.ToLower(testhelpers.RandString(8))
		ok(t, env, "copy", layoutSrc, img)
		check(t, env, img)
	})
}

// TestProgressOfAPush: a push of incompressible files (the compressed layer
// is bigger than its estimate) prints, without a terminal, one line per
// blob with the size that went, and with --quiet nothing but the result.
func TestProgressOfAPush(t *testing.T) {
	dir := t.TempDir()
	noise := make([]byte, 6<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	app := fileDir(t, dir, "app", "noise.bin", noise)
	reg := testhelpers.StartRegistry(t)
	out, errOut, code := cli(t, nil, "append", "--layer", app, reg.Repo("cli/noise:1"))
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errOut)
	}
	var pushes []string
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if strings.HasPrefix(line, "push ") {
			pushes = append(pushes, line)
		}
	}
	if len(pushes) == 0 || len(pushes) > 3 || !strings.Contains(errOut, " 6.0 MiB") {
		t.Errorf("progress without a terminal: %q, want a line per blob, the layer's with its 6.0 MiB", errOut)
	}
	seen := map[string]bool{}
	for _, l := range pushes {
		if seen[l] {
			t.Errorf("line %q printed twice", l)
		}
		seen[l] = true
	}
	if !strings.Contains(out, "saved ") {
		t.Errorf("result: %q", out)
	}
	out, errOut, code = cli(t, nil, "append", "--quiet", "--layer", app, reg.Repo("cli/noise:2"))
	if code != 0 || errOut != "" || !strings.Contains(out, "saved ") {
		t.Errorf("--quiet: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

// forEachContainerd runs f as a subtest for each containerd
// IMGUTIL_CONTAINERD_HOSTS lists, with the environment that reaches it.
func forEachContainerd(t *testing.T, f func(t *testing.T, env []string)) {
	t.Helper()
	hosts := os.Getenv("IMGUTIL_CONTAINERD_HOSTS")
	if hosts == "" {
		return
	}
	for _, kv := range strings.Split(hosts, ",") {
		name, sock, _ := strings.Cut(kv, "=")
		t.Run("containerd-"+name, func(t *testing.T) { f(t, []string{"CONTAINERD_ADDRESS=" + sock}) })
	}
}

// fileDir makes dir/name holding one file of content, and returns it.
func fileDir(t *testing.T, dir, name, file string, content []byte) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, file), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}
