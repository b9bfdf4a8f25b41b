package layout_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcr "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layer"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSaveFileLoadsIntoDocker: a layout image edited, saved, reopened with
// its edits, exported with SaveFile and loaded by the daemon.
func TestSaveFileLoadsIntoDocker(t *testing.T) {
	cli := testhelpers.DockerClient(t)
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base")
	p, err := ggcr.Write(basePath, empty.Index)
	must(t, err)
	must(t, p.AppendImage(testhelpers.BusyboxImage(t, imgutil.DockerTypes)))

	appPath := filepath.Join(dir, "app")
	img, err := layout.NewImage(appPath, layout.FromBaseImagePath(basePath))
	must(t, err)
	must(t, img.SetLabel("app", "yes"))
	lp, _ := testhelpers.LayerFile(t, map[string]string{"app/main": "main"})
	must(t, img.AddLayer(lp))
	must(t, img.Save())

	reopened, err := layout.NewImage(filepath.Join(dir, "again"), layout.FromBaseImagePath(appPath))
	must(t, err)
	if v, _ := reopened.Label("app"); v != "yes" {
		t.Fatalf("reopened Label(app) = %q, want yes", v)
	}
	must(t, reopened.AnnotateRefName("imgutil-test/layout-savefile:latest"))
	file, err := reopened.SaveFile()
	must(t, err)
	t.Cleanup(func() { os.Remove(file) })

	loaded := testhelpers.DockerLoad(t, cli, file)
	if len(loaded) != 1 {
		t.Fatalf("docker load reported %v, want one image", loaded)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), loaded[0], client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	inspect, err := cli.ImageInspect(context.Background(), loaded[0])
	must(t, err)
	cfg, err := reopened.UnderlyingImage().ConfigFile()
	must(t, err)
	var want []string
	for _, d := range cfg.RootFS.DiffIDs {
		want = append(want, d.String())
	}
	if !slices.Equal(inspect.RootFS.Layers, want) {
		t.Fatalf("daemon layers = %v, want %v", inspect.RootFS.Layers, want)
	}
	if inspect.Config.Labels["app"] != "yes" {
		t.Fatalf("daemon labels = %v", inspect.Config.Labels)
	}
}

// TestMultiPlatformBase opens a layout holding two platforms by platform.
func TestMultiPlatformBase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "multi")
	p, err := ggcr.Write(dir, empty.Index)
	must(t, err)
	for _, arch := range []string{"amd64", "arm64"} {
		must(t, p.AppendImage(testhelpers.PlatformImage(t, arch), ggcr.WithPlatform(v1.Platform{OS: "linux", Architecture: arch})))
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := layout.NewImage(filepath.Join(t.TempDir(), "x"), layout.FromBaseImagePath(dir),
			layout.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: arch}))
		must(t, err)
		if got, _ := img.Architecture(); got != arch {
			t.Errorf("Architecture() = %q, want %q", got, arch)
		}
	}
	_, err = layout.NewImage(filepath.Join(t.TempDir(), "x"), layout.FromBaseImagePath(dir),
		layout.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: "s390x"}))
	if !errors.Is(err, imgutil.ErrNotFound) {
		t.Fatalf("NewImage for a platform the layout lacks = %v, want ErrNotFound", err)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	must(t, os.WriteFile(file, []byte("x"), 0o644))

	t.Run("LayoutPathIsAFile", func(t *testing.T) {
		img, err := layout.NewImage(file)
		must(t, err)
		var saveErr imgutil.SaveError
		if err := img.Save(); !errors.As(err, &saveErr) || !errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Fatalf("Save to a file path = %v, want SaveError matching ErrInvalidArgument", err)
		}
		if _, err := layout.NewImage(filepath.Join(dir, "x"), layout.FromBaseImagePath(file)); !errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Fatalf("base path that is a file = %v, want ErrInvalidArgument", err)
		}
	})

	t.Run("VanishedLayerLeavesNoLayout", func(t *testing.T) {
		target := filepath.Join(dir, "never")
		img, err := layout.NewImage(target)
		must(t, err)
		lp, _ := testhelpers.LayerFile(t, map[string]string{"a": "a"})
		must(t, img.AddLayer(lp))
		must(t, os.Remove(lp))
		if err := img.Save(); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Save with a vanished layer file = %v, want os.ErrNotExist", err)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a failed Save left %s behind (%v)", target, err)
		}
	})

	t.Run("FailedSaveKeepsPreviousImage", func(t *testing.T) {
		target := filepath.Join(dir, "kept")
		first, err := layout.NewImage(target)
		must(t, err)
		lp, _ := testhelpers.LayerFile(t, map[string]string{"first": "1"})
		must(t, first.AddLayer(lp))
		must(t, first.Save())
		want, err := first.Digest()
		must(t, err)

		second, err := layout.NewImage(target)
		must(t, err)
		lp2, _ := testhelpers.LayerFile(t, map[string]string{"second": "2"})
		must(t, second.AddLayer(lp2))
		must(t, os.Remove(lp2))
		if err := second.Save(); err == nil {
			t.Fatal("Save with a vanished layer file succeeded")
		}
		got := readLayout(t, target)
		if d, _ := got.Digest(); d != want {
			t.Fatalf("after a failed Save the layout holds %s, want the previous %s", d, want)
		}
		entries, err := os.ReadDir(filepath.Join(target, "blobs", "sha256"))
		must(t, err)
		for _, e := range entries {
			if e.Name()[0] == '.' {
				t.Errorf("temp blob %s left behind", e.Name())
			}
		}
	})

	t.Run("UnknownMediaType", func(t *testing.T) {
		base := filepath.Join(dir, "weird")
		p, err := ggcr.Write(base, empty.Index)
		must(t, err)
		img, err := random.Image(16, 1)
		must(t, err)
		must(t, p.AppendImage(mutate.MediaType(img, types.MediaType("application/x-unknown"))))
		if _, err := layout.NewImage(filepath.Join(dir, "y"), layout.FromBaseImagePath(base)); !errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Fatalf("base with an unknown media type = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"busybox", "index.docker.io/library/busybox/latest"},
		{"my.registry:5000/team/app:v1", "my.registry:5000/team/app/v1"},
		{"my.registry:5000/team/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "my.registry:5000/team/app/sha256/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	} {
		got, err := layout.ParseRefToPath(tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("ParseRefToPath(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
	if _, err := layout.ParseRefToPath("UPPER/case"); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("ParseRefToPath(invalid) = %v, want ErrInvalidArgument", err)
	}
	id := layout.Identifier{Path: "/a/b", Digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
	back, err := layout.ParseIdentifier(id.String())
	if err != nil || back != id {
		t.Errorf("ParseIdentifier(%q) = %v, %v", id.String(), back, err)
	}
	for _, bad := range []string{"no-digest", "/a/b@sha256:abc", "/a/b@md5:" + strings.Repeat("a", 32), "/a/b@sha512:" + strings.Repeat("a", 128)} {
		if _, err := layout.ParseIdentifier(bad); !errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Errorf("ParseIdentifier(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	// The existing library's texts, which callers' tests match.
	for in, want := range map[string]string{
		"/foo.com/bar/image@sha111:" + strings.Repeat("f", 64): `unsupported hash: "sha111"`,
		"/foo.com/bar/image@sha256:1234":                       "wrong number of hex digits for sha256: 1234",
		"/foo.com/bar/image@@sha256:1234":                      "identifier /foo.com/bar/image@@sha256:1234 does not have the format '[path]@[digest]'",
	} {
		if _, err := layout.ParseIdentifier(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseIdentifier(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}

// TestWindowsImageFromScratch: an empty Windows image starts with the
// minimal Windows base layer, so TopLayer and Save work.
func TestWindowsImageFromScratch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "win")
	img, err := layout.NewImage(dir, layout.WithDefaultPlatform(imgutil.Platform{OS: "windows", Architecture: "amd64"}))
	must(t, err)
	r, err := layer.WindowsBaseLayer()
	must(t, err)
	b, err := io.ReadAll(r)
	must(t, err)
	want := "sha256:" + sha256Hex(b)
	if top, err := img.TopLayer(); err != nil || top != want {
		t.Fatalf("TopLayer = %s (%v), want the Windows base layer %s", top, err, want)
	}
	must(t, img.Save())
	saved := readLayout(t, dir)
	testhelpers.CheckImage(t, saved)
	cfg, err := saved.ConfigFile()
	must(t, err)
	if cfg.OS != "windows" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].String() != want {
		t.Fatalf("saved windows image: os %s, layers %v", cfg.OS, cfg.RootFS.DiffIDs)
	}
}

// TestHistoryOnePerLayer: with WithHistory, History has one entry per
// layer: the base's entries that made no layer are left out.
func TestHistoryOnePerLayer(t *testing.T) {
	base, err := random.Image(64, 2)
	must(t, err)
	cfg, err := base.ConfigFile()
	must(t, err)
	cfg = cfg.DeepCopy()
	cfg.History = []v1.History{{CreatedBy: "layer 1"}, {CreatedBy: "ENV X=1", EmptyLayer: true}, {CreatedBy: "layer 2"}}
	base, err = mutate.ConfigFile(base, cfg)
	must(t, err)
	img, err := layout.NewImage(filepath.Join(t.TempDir(), "app"), layout.FromBaseImageInstance(base), layout.WithHistory())
	must(t, err)
	h, err := img.History()
	must(t, err)
	if len(h) != 2 || h[0].CreatedBy != "layer 1" || h[1].CreatedBy != "layer 2" {
		t.Fatalf("History = %+v, want the two layer entries", h)
	}
}

// TestConcurrentSavesIntoOneLayout: saves into one layout take turns; a
// save that fails undoes only what it wrote and never removes another's
// completed image or a blob that image uses.
func TestConcurrentSavesIntoOneLayout(t *testing.T) {
	for round := range 5 {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("shared-%d", round))
		shared, _ := testhelpers.LayerFile(t, map[string]string{"shared": "same bytes in both images"})
		good, err := layout.NewImage(dir)
		must(t, err)
		must(t, good.AddLayer(shared))
		bad, err := layout.NewImage(dir)
		must(t, err)
		must(t, bad.AddLayer(shared))
		vanishing, _ := testhelpers.RandomLayerFile(t, 1<<20)
		must(t, bad.AddLayer(vanishing))
		must(t, os.Remove(vanishing))

		var wg sync.WaitGroup
		var goodErr, badErr error
		wg.Add(2)
		go func() { defer wg.Done(); goodErr = good.Save() }()
		go func() { defer wg.Done(); badErr = bad.Save() }()
		wg.Wait()
		must(t, goodErr)
		if badErr == nil {
			t.Fatal("a save with a vanished layer file succeeded")
		}
		saved := readLayout(t, dir)
		testhelpers.CheckImage(t, saved)
		want, err := good.Digest()
		must(t, err)
		if got, _ := saved.Digest(); got != want {
			t.Fatalf("round %d: the layout holds %s, want the completed image %s", round, got, want)
		}
	}
}

// TestLayerFileChangedAfterAdd: a layer file rewritten between AddLayer and
// Save (or SaveFile) fails with ErrDiffIDMismatch and leaves nothing behind.
func TestLayerFileChangedAfterAdd(t *testing.T) {
	for _, gz := range []bool{false, true} {
		p, _ := testhelpers.LayerFile(t, map[string]string{"a": "original"})
		if gz {
			p = gzipFile(t, p)
		}
		dir := filepath.Join(t.TempDir(), "app")
		img, err := layout.NewImage(dir)
		must(t, err)
		must(t, img.AddLayer(p))
		other, _ := testhelpers.LayerFile(t, map[string]string{"a": "rewritten"})
		if gz {
			other = gzipFile(t, other)
		}
		b, err := os.ReadFile(other)
		must(t, err)
		must(t, os.WriteFile(p, b, 0o644))
		if err := img.Save(); !errors.Is(err, imgutil.ErrDiffIDMismatch) {
			t.Errorf("gzip %v: Save of a changed layer file = %v, want ErrDiffIDMismatch", gz, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("gzip %v: the failed save left %s", gz, dir)
		}
		if out, err := img.SaveFile(); !errors.Is(err, imgutil.ErrDiffIDMismatch) {
			os.Remove(out)
			t.Errorf("gzip %v: SaveFile of a changed layer file = %v, want ErrDiffIDMismatch", gz, err)
		}
		if left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf(".imgutil-partial-*-%d-*", os.Getpid()))); len(left) > 0 {
			t.Errorf("gzip %v: a failed SaveFile left %v", gz, left)
		}
	}
}

func gzipFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err = zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	out := path + ".gz"
	must(t, os.WriteFile(out, buf.Bytes(), 0o644))
	return out
}

// TestUserFileModes: blobs, index.json and exported archives get the modes
// other tools give files (0666 less the umask), not private ones.
func TestUserFileModes(t *testing.T) {
	want := fs.FileMode(0o666) &^ umask()
	dir := filepath.Join(t.TempDir(), "app")
	img, err := layout.NewImage(dir)
	must(t, err)
	p, _ := testhelpers.LayerFile(t, map[string]string{"m": "m"})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	out, err := img.SaveFile()
	must(t, err)
	defer os.Remove(out)
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	must(t, err)
	for _, f := range append(blobs, filepath.Join(dir, "index.json"), out) {
		fi, err := os.Stat(f)
		must(t, err)
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
}
