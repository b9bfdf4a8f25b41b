package compat_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

var update = flag.Bool("update", false, "rewrite the golden config files in testdata")

// exportTime is the lifecycle's -created-at (SOURCE_DATE_EPOCH).
var exportTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// tarEntry is one entry of a layer written as the lifecycle writes them.
type tarEntry struct {
	name, body, link string
	typ              byte
}

// lifecycleLayer writes a layer tar the way the lifecycle (and pack) do:
// every name absolute, parent directories first, a symbolic link with an
// absolute target, a hard link named by its absolute path; fixed times and
// owners, so the same content always gives the same diffID.
func lifecycleLayer(t *testing.T, dir string, entries ...tarEntry) (path, diffID string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644,
			ModTime: imgutil.NormalizedDateTime, Uid: 1000, Gid: 1000, Format: tar.FormatPAX,
		}
		switch e.typ {
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeReg:
			hdr.Size = int64(len(e.body))
		}
		must(t, tw.WriteHeader(hdr))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	path = filepath.Join(dir, strings.ReplaceAll(strings.Trim(entries[len(entries)-1].name, "/"), "/", "_")+".tar")
	must(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path, v1.Hash{Algorithm: "sha256", Hex: sha256Hex(buf.Bytes())}.String()
}

// buildpackLayers are the layers of one build: a buildpack layer (reused
// by the rebuild), the app layer and the launcher config layer (added again
// by the rebuild with the same bytes, as the lifecycle does).
type buildpackLayers struct {
	deps, app, config       string
	depsID, appID, configID string
}

func writeBuildpackLayers(t *testing.T) buildpackLayers {
	dir := t.TempDir()
	var l buildpackLayers
	l.deps, l.depsID = lifecycleLayer(t, dir,
		tarEntry{name: "/layers/", typ: tar.TypeDir},
		tarEntry{name: "/layers/example_node/", typ: tar.TypeDir},
		tarEntry{name: "/layers/example_node/deps/", typ: tar.TypeDir},
		tarEntry{name: "/layers/example_node/deps/lib.js", body: "module.exports = 1\n", typ: tar.TypeReg},
		tarEntry{name: "/layers/example_node/deps/current", link: "/layers/example_node/deps/lib.js", typ: tar.TypeSymlink},
		tarEntry{name: "/layers/example_node/deps/hard.js", link: "/layers/example_node/deps/lib.js", typ: tar.TypeLink},
	)
	l.app, l.appID = lifecycleLayer(t, dir,
		tarEntry{name: "/workspace/", typ: tar.TypeDir},
		tarEntry{name: "/workspace/server.js", body: "console.log('hi')\n", typ: tar.TypeReg},
	)
	l.config, l.configID = lifecycleLayer(t, dir,
		tarEntry{name: "/cnb/", typ: tar.TypeDir},
		tarEntry{name: "/cnb/process/", typ: tar.TypeDir},
		tarEntry{name: "/cnb/process/web", link: "/cnb/lifecycle/launcher", typ: tar.TypeSymlink},
		tarEntry{name: "/cnb/config.toml", body: "[[processes]]\ntype = \"web\"\n", typ: tar.TypeReg},
	)
	return l
}

// runImage is a fixed run image: two layers, a history with an entry that
// made no layer, a container ID and a runtime config; the same bytes on
// every run, so the saved config can be compared byte for byte.
func runImage(t *testing.T, mt imgutil.MediaTypes) v1.Image {
	t.Helper()
	dir := t.TempDir()
	p1, _ := lifecycleLayer(t, dir, tarEntry{name: "etc/", typ: tar.TypeDir}, tarEntry{name: "etc/os-release", body: "ID=fixture\n", typ: tar.TypeReg})
	p2, _ := lifecycleLayer(t, dir, tarEntry{name: "usr/", typ: tar.TypeDir}, tarEntry{name: "usr/share/", typ: tar.TypeDir}, tarEntry{name: "usr/share/data", body: "data\n", typ: tar.TypeReg})
	created := v1.Time{Time: time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)}
	img := mutate.MediaType(empty.Image, mt.ManifestType())
	img = mutate.ConfigMediaType(img, mt.ConfigType())
	for i, p := range []string{p1, p2} {
		l, err := tarball.LayerFromFile(p, tarball.WithMediaType(mt.LayerType()))
		must(t, err)
		h := v1.History{Created: created, CreatedBy: "/bin/sh -c #(nop) ADD file" + string(rune('1'+i)) + " in /"}
		var err2 error
		img, err2 = mutate.Append(img, mutate.Addendum{Layer: l, History: h, MediaType: mt.LayerType()})
		must(t, err2)
		if i == 0 {
			// An instruction that made no layer.
			cfg, err := img.ConfigFile()
			must(t, err)
			cfg = cfg.DeepCopy()
			cfg.History = append(cfg.History, v1.History{Created: created, CreatedBy: "/bin/sh -c #(nop) ENV STACK=fixture", EmptyLayer: true})
			img, err = mutate.ConfigFile(img, cfg)
			must(t, err)
		}
	}
	cfg, err := img.ConfigFile()
	must(t, err)
	cfg = cfg.DeepCopy()
	cfg.Created = created
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Container = "4f3a1c0ffee"
	cfg.Config = v1.Config{
		Env: []string{"PATH=/usr/bin:/bin", "STACK=fixture"}, User: "1000:1000", WorkingDir: "/",
		Labels: map[string]string{"io.buildpacks.stack.id": "fixture"},
	}
	img, err = mutate.ConfigFile(img, cfg)
	must(t, err)
	return img
}

// lifecycleExport replays the lifecycle exporter's calls on img (opened
// with the base, previous image, history and created time) and saves it
// under its name and extra. rebuild reuses the buildpack layer from the
// previous image. It returns the identifier Identifier gave before saving.
func lifecycleExport(t *testing.T, img imgutil.Image, l buildpackLayers, rebuild bool, extra ...string) imgutil.Identifier {
	t.Helper()
	before, err := img.Identifier()
	must(t, err)
	if rebuild {
		has, err := img.(interface{ PreviousImageHasLayer(string) (bool, error) }).PreviousImageHasLayer(l.depsID)
		must(t, err)
		if !has {
			t.Fatalf("the previous image lacks the buildpack layer %s", l.depsID)
		}
		must(t, img.ReuseLayerWithHistory(l.depsID, v1.History{CreatedBy: "Buildpack Layer: example/node:deps"}))
	} else {
		must(t, img.AddLayerWithDiffIDAndHistory(l.deps, l.depsID, v1.History{CreatedBy: "Buildpack Layer: example/node:deps"}))
	}
	must(t, img.AddLayerWithDiffIDAndHistory(l.app, l.appID, v1.History{CreatedBy: "Application Layer"}))
	must(t, img.AddLayerWithDiffIDAndHistory(l.config, l.configID, v1.History{CreatedBy: "Buildpacks Launcher Config"}))
	// (The lifecycle records the identifier here; a fixed text keeps the
	// golden config the same on every daemon and registry port.)
	must(t, img.SetLabel("io.buildpacks.lifecycle.metadata", `{"runImage":{"topLayer":"fixture"}}`))
	must(t, img.SetLabel("io.buildpacks.build.metadata", `{"processes":[{"type":"web"}]}`))
	must(t, img.SetEnv("CNB_LAYERS_DIR", "/layers"))
	must(t, img.SetWorkingDir("/workspace"))
	must(t, img.SetEntrypoint("/cnb/process/web"))
	must(t, img.SetCmd())
	if err := img.SaveAs(img.Name(), extra...); err != nil {
		var se imgutil.SaveError
		if errors.As(err, &se) {
			for _, d := range se.Errors {
				t.Errorf("saving %s: %v", d.ImageName, d.Cause)
			}
		}
		t.Fatalf("SaveAs: %v", err)
	}
	return before
}

// checkBadLayers: what the lifecycle could hand over wrongly is refused
// clearly, whatever the backend.
func checkBadLayers(t *testing.T, img imgutil.Image) {
	t.Helper()
	dir := t.TempDir()
	evil, evilID := lifecycleLayer(t, dir, tarEntry{name: "../../etc/x", body: "x", typ: tar.TypeReg})
	if err := img.AddLayerWithDiffIDAndHistory(evil, evilID, v1.History{}); !errors.Is(err, imgutil.ErrUnsafeTar) {
		t.Errorf("adding a layer with ../../etc/x = %v, want ErrUnsafeTar", err)
	}
	notTar := filepath.Join(dir, "not.tar")
	must(t, os.WriteFile(notTar, bytes.Repeat([]byte("not a tar at all "), 64), 0o644))
	if err := img.AddLayerWithDiffIDAndHistory(notTar, evilID, v1.History{}); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("adding a file that is not a tar = %v, want ErrInvalidArgument", err)
	}
	if err := img.AddLayerWithDiffIDAndHistory(filepath.Join(dir, "missing.tar"), evilID, v1.History{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("adding a missing file = %v, want fs.ErrNotExist", err)
	}
}

// checkGoldenConfig compares the saved config with testdata/name: created,
// container and history follow the existing library's save rules exactly.
func checkGoldenConfig(t *testing.T, saved v1.Image, golden string) {
	t.Helper()
	raw, err := saved.RawConfigFile()
	must(t, err)
	path := filepath.Join("testdata", golden)
	if *update {
		must(t, os.MkdirAll("testdata", 0o755))
		must(t, os.WriteFile(path, raw, 0o644))
	}
	want, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(raw, want) {
		t.Fatalf("saved config differs from %s:\n got %s\nwant %s", path, raw, want)
	}
}

func TestLifecycleExportDaemon(t *testing.T) {
	testhelpers.ForEachDaemon(t, func(t *testing.T, cli *client.Client) {
		suffix := strings.ToLower(time.Now().Format("150405.000000000"))
		suffix = strings.ReplaceAll(suffix, ".", "")
		run := "imgutil-lifecycle/run:" + suffix
		app := "imgutil-lifecycle/app:" + suffix
		extra := app + "-extra"
		testhelpers.DockerPut(t, cli, run, runImage(t, imgutil.DockerTypes))
		testhelpers.DockerCleanup(t, cli, app)
		testhelpers.DockerCleanup(t, cli, extra)
		runInspect, err := cli.ImageInspect(t.Context(), run)
		must(t, err)
		runID := strings.TrimPrefix(runInspect.ID, "sha256:")
		layers := writeBuildpackLayers(t)

		// The lifecycle's client when the socket is root's: one request
		// at a time, a second concurrent one fails.
		single := testhelpers.NewSingleConnClient(t, cli)
		var ids []string
		for build, rebuild := range []bool{false, true} {
			img, err := local.NewImage(app, single,
				local.FromBaseImage(run), local.WithPreviousImage(app),
				local.WithHistory(), local.WithCreatedAt(exportTime))
			must(t, err)
			defer img.Close()
			if build == 0 {
				checkBadLayers(t, img)
			}
			before := lifecycleExport(t, img, layers, rebuild, extra)
			if before.(local.IDIdentifier).ImageID != runID {
				t.Errorf("build %d: Identifier() before saving = %s, want the run image's ID %s", build, before, runID)
			}
			after, err := img.Identifier()
			must(t, err)
			saved, err := cli.ImageInspect(t.Context(), app)
			must(t, err)
			if "sha256:"+after.(local.IDIdentifier).ImageID != saved.ID {
				t.Errorf("build %d: Identifier() after saving = %s, the daemon has %s", build, after, saved.ID)
			}
			if tagged, err := cli.ImageInspect(t.Context(), extra); err != nil || tagged.ID != saved.ID {
				t.Errorf("build %d: extra tag %s = %v (%v), want %s", build, extra, tagged.ID, err, saved.ID)
			}
			ids = append(ids, saved.ID)
			read := testhelpers.DockerRead(t, cli, app)
			testhelpers.CheckImage(t, read)
			checkGoldenConfig(t, read, "lifecycle-config-daemon.json")
		}
		// Read back as the restorer and an export do, on one connection:
		// the absolute-name layer byte for byte (GetLayer), and the
		// daemon's own archive of the image through its checks (SaveFile).
		reopened, err := local.NewImage(app, single, local.FromBaseImage(app))
		must(t, err)
		defer reopened.Close()
		testhelpers.CheckGetLayer(t, reopened.GetLayer, layers.depsID)
		out, err := reopened.SaveFile()
		must(t, err)
		must(t, os.Remove(out))
		if single.Overlaps() > 0 {
			t.Errorf("%d calls overlapped on a single-connection client", single.Overlaps())
		}
		if ids[0] != ids[1] {
			t.Errorf("the rebuild of the same inputs is image %s, the build was %s", ids[1], ids[0])
		}
	})
}

func TestLifecycleExportRegistry(t *testing.T) {
	reg := testhelpers.StartRegistry(t, testhelpers.WithBasicAuth("cnb", "cnb-pass"))
	kc := reg.Keychain()
	run := reg.Put(t, "lifecycle/run:latest", runImage(t, imgutil.OCITypes))
	app := reg.Repo("lifecycle/app:latest")
	extra := reg.Repo("lifecycle/app:extra")
	digestOf := func(ref string) string {
		r, err := name.ParseReference(ref)
		must(t, err)
		d, err := ggcrremote.Head(r, ggcrremote.WithAuthFromKeychain(kc))
		must(t, err)
		return d.Digest.String()
	}
	runDigest := digestOf(run)

	// Unedited, the image is its base: the lifecycle records the run
	// image by this digest and pulls it by it later.
	untouched, err := remote.NewImage(app, kc, remote.FromBaseImage(run))
	must(t, err)
	checkUneditedDigest(t, untouched, runDigest)

	layers := writeBuildpackLayers(t)
	var digests []string
	for build, rebuild := range []bool{false, true} {
		img, err := remote.NewImage(app, kc, remote.FromBaseImage(run), remote.WithPreviousImage(app),
			remote.WithHistory(), remote.WithCreatedAt(exportTime))
		must(t, err)
		if build == 0 {
			checkBadLayers(t, img)
		}
		before := lifecycleExport(t, img, layers, rebuild, extra)
		if got := before.(remote.DigestIdentifier).Digest.DigestStr(); got != runDigest {
			t.Errorf("build %d: Identifier() before editing = %s, want the run image's %s", build, got, runDigest)
		}
		after, err := img.Identifier()
		must(t, err)
		if got, want := after.(remote.DigestIdentifier).Digest.DigestStr(), digestOf(app); got != want {
			t.Errorf("build %d: Identifier() after saving = %s, the registry has %s", build, got, want)
		}
		if digestOf(extra) != digestOf(app) {
			t.Errorf("build %d: %s and %s differ", build, extra, app)
		}
		digests = append(digests, digestOf(app))
		saved := reg.Get(t, "lifecycle/app:latest")
		testhelpers.CheckImage(t, saved)
		checkGoldenConfig(t, saved, "lifecycle-config.json")
	}
	if digests[0] != digests[1] {
		t.Errorf("the rebuild of the same inputs is %s, the build was %s", digests[1], digests[0])
	}
}

func TestLifecycleExportLayout(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	testhelpers.LayoutPut(t, run, runImage(t, imgutil.OCITypes))
	runDigest := layoutDigest(t, run)
	app := filepath.Join(dir, "app")

	untouched, err := layout.NewImage(app, layout.FromBaseImagePath(run))
	must(t, err)
	checkUneditedDigest(t, untouched, runDigest)

	layers := writeBuildpackLayers(t)
	var digests []string
	for build, rebuild := range []bool{false, true} {
		img, err := layout.NewImage(app, layout.FromBaseImagePath(run), layout.WithPreviousImage(app),
			layout.WithHistory(), layout.WithCreatedAt(exportTime))
		must(t, err)
		if build == 0 {
			checkBadLayers(t, img)
		}
		before := lifecycleExport(t, img, layers, rebuild, filepath.Join(dir, "extra"))
		if got := before.(layout.Identifier).Digest; got != runDigest {
			t.Errorf("build %d: Identifier() before editing = %s, want the run image's %s", build, got, runDigest)
		}
		after, err := img.Identifier()
		must(t, err)
		if got, want := after.(layout.Identifier).Digest, layoutDigest(t, app); got != want {
			t.Errorf("build %d: Identifier() after saving = %s, the layout has %s", build, got, want)
		}
		digests = append(digests, layoutDigest(t, app))
		saved, err := ggcrlayout.ImageIndexFromPath(app)
		must(t, err)
		h, err := v1.NewHash(digests[build])
		must(t, err)
		img2, err := saved.Image(h)
		must(t, err)
		testhelpers.CheckImage(t, img2)
		checkGoldenConfig(t, img2, "lifecycle-config.json")
	}
	if digests[0] != digests[1] {
		t.Errorf("the rebuild of the same inputs is %s, the build was %s", digests[1], digests[0])
	}
}

// checkUneditedDigest: an image opened from a base and not edited answers
// with the base's own digest, from Identifier, Digest and UnderlyingImage.
func checkUneditedDigest(t *testing.T, img imgutil.Image, want string) {
	t.Helper()
	id, err := img.Identifier()
	must(t, err)
	if !strings.Contains(id.String(), want) {
		t.Errorf("unedited Identifier() = %s, want the base's digest %s", id, want)
	}
	d, err := img.(interface{ Digest() (v1.Hash, error) }).Digest()
	must(t, err)
	u, err := img.UnderlyingImage().Digest()
	must(t, err)
	if d.String() != want || u.String() != want {
		t.Errorf("unedited Digest() = %s, UnderlyingImage().Digest() = %s, want the base's %s", d, u, want)
	}
}

// layoutDigest is the digest of the one manifest of the layout at path.
func layoutDigest(t *testing.T, path string) string {
	t.Helper()
	idx, err := ggcrlayout.ImageIndexFromPath(path)
	must(t, err)
	m, err := idx.IndexManifest()
	must(t, err)
	for _, d := range m.Manifests {
		if d.MediaType == types.OCIManifestSchema1 || d.MediaType == types.DockerManifestSchema2 {
			return d.Digest.String()
		}
	}
	t.Fatalf("layout %s holds no image", path)
	return ""
}
