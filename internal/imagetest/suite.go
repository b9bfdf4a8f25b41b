package imagetest

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/testhelpers"
)

// Harness is what the suite needs of a backend.
type Harness struct {
	// NewImage returns a new image of the backend named name.
	NewImage func(t *testing.T, name string, ops ...imgutil.ImageOption) imgutil.Image
	// FreshName returns a name no image has yet.
	FreshName func(t *testing.T) string
	// Store saves img in the backend's store under a fresh name, returned.
	Store func(t *testing.T, img v1.Image) string
	// Read reads the image saved under name back from the store.
	Read func(t *testing.T, name string) v1.Image
	// BaseMediaTypes are the media types the backend's stored images have.
	BaseMediaTypes imgutil.MediaTypes
	// KeepsMediaTypes is true when images read back have the media types
	// they were saved with (a daemon converts them to its own).
	KeepsMediaTypes bool
	// UncompressedLayers is true when the backend stores layers it was
	// given uncompressed (their digest their diffID), typed in the family
	// asked for (containerd's content store).
	UncompressedLayers bool
}

// Run runs the suite against h.
func Run(t *testing.T, h Harness) {
	s := suite{h}
	t.Run("FromScratch", s.fromScratch)
	t.Run("FromBase", s.fromBase)
	t.Run("ReopenShowsEdits", s.reopen)
	t.Run("ReuseLayer", s.reuseLayer)
	t.Run("ReuseLayerMissing", s.reuseLayerMissing)
	t.Run("AddOrReuseLayer", s.addOrReuse)
	t.Run("GetLayer", s.getLayer)
	t.Run("Rebase", s.rebase)
	t.Run("AdditionalNames", s.additionalNames)
	t.Run("MediaTypes", s.mediaTypes)
	t.Run("HistoryAndCreatedAt", s.history)
	t.Run("BadLayers", s.badLayers)
	t.Run("SaveFile", s.saveFile)
	t.Run("IdentifierAndDelete", s.identifierAndDelete)
	t.Run("ContextMethods", s.contextMethods)
}

type suite struct{ h Harness }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (s suite) base(t *testing.T) (string, v1.Image) {
	t.Helper()
	img := testhelpers.BusyboxImage(t, s.h.BaseMediaTypes)
	return s.h.Store(t, img), img
}

func (s suite) saveAndRead(t *testing.T, img imgutil.Image) v1.Image {
	t.Helper()
	must(t, img.Save())
	if !img.Found() {
		t.Fatalf("Found() = false after Save, want true")
	}
	got := s.h.Read(t, img.Name())
	testhelpers.CheckImage(t, got)
	return got
}

func (s suite) fromScratch(t *testing.T) {
	img := s.h.NewImage(t, s.h.FreshName(t))
	if img.Found() {
		t.Fatalf("Found() = true before Save, want false")
	}
	must(t, img.SetEnv("A", "1"))
	must(t, img.SetEnv("A", "2"))
	must(t, img.SetLabel("l1", "v1"))
	must(t, img.SetLabel("gone", "x"))
	must(t, img.RemoveLabel("gone"))
	must(t, img.SetEntrypoint("/bin/sh", "-c"))
	must(t, img.SetCmd("echo", "hi"))
	must(t, img.SetWorkingDir("/work"))
	must(t, img.SetOS("linux"))
	must(t, img.SetArchitecture("arm64"))
	must(t, img.SetVariant("v8"))
	layerPath, diffID := testhelpers.LayerFile(t, map[string]string{"app/hello": "hi"})
	must(t, img.AddLayer(layerPath))
	top, err := img.TopLayer()
	must(t, err)
	if top != diffID {
		t.Fatalf("TopLayer() = %s, want %s", top, diffID)
	}

	got := s.saveAndRead(t, img)
	cfg, err := got.ConfigFile()
	must(t, err)
	if want := []string{"A=2"}; !slices.Equal(cfg.Config.Env, want) {
		t.Errorf("Env = %v, want %v", cfg.Config.Env, want)
	}
	if cfg.Config.Labels["l1"] != "v1" || len(cfg.Config.Labels) != 1 {
		t.Errorf("Labels = %v, want map[l1:v1]", cfg.Config.Labels)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(cfg.Config.Cmd, []string{"echo", "hi"}) {
		t.Errorf("Entrypoint, Cmd = %v, %v", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if cfg.Config.WorkingDir != "/work" || cfg.OS != "linux" || cfg.Architecture != "arm64" || cfg.Variant != "v8" {
		t.Errorf("WorkingDir, OS, Architecture, Variant = %q %q %q %q", cfg.Config.WorkingDir, cfg.OS, cfg.Architecture, cfg.Variant)
	}
	if !cfg.Created.Equal(imgutil.NormalizedDateTime) {
		t.Errorf("Created = %v, want %v", cfg.Created.Time, imgutil.NormalizedDateTime)
	}
	if ids := testhelpers.DiffIDs(t, got); !slices.Equal(ids, []string{diffID}) {
		t.Errorf("DiffIDs = %v, want [%s]", ids, diffID)
	}
}

func (s suite) fromBase(t *testing.T) {
	baseName, base := s.base(t)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName))
	if v, _ := img.Label("io.imgbridge.fixture"); v != "busybox" {
		t.Fatalf("Label of base = %q, want busybox", v)
	}
	if v, _ := img.Env("PATH"); v != "/usr/bin:/bin" {
		t.Fatalf("Env(PATH) of base = %q", v)
	}
	layerPath, diffID := testhelpers.LayerFile(t, map[string]string{"app/run": "x"})
	must(t, img.AddLayer(layerPath))
	got := s.saveAndRead(t, img)
	want := append(testhelpers.DiffIDs(t, base), diffID)
	if ids := testhelpers.DiffIDs(t, got); !slices.Equal(ids, want) {
		t.Fatalf("DiffIDs = %v, want %v", ids, want)
	}
}

func (s suite) reopen(t *testing.T) {
	baseName, _ := s.base(t)
	name := s.h.FreshName(t)
	img := s.h.NewImage(t, name, imgutil.FromBaseImage(baseName))
	must(t, img.SetLabel("k", "v"))
	must(t, img.SetEnv("E", "e"))
	must(t, img.SetWorkingDir("/w"))
	must(t, img.Save())

	again := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(name))
	if v, _ := again.Label("k"); v != "v" {
		t.Errorf("Label(k) = %q, want v", v)
	}
	if v, _ := again.Env("E"); v != "e" {
		t.Errorf("Env(E) = %q, want e", v)
	}
	if v, _ := again.WorkingDir(); v != "/w" {
		t.Errorf("WorkingDir() = %q, want /w", v)
	}
}

// previous builds and stores a previous image: the base plus two app layers
// with their own history.
func (s suite) previous(t *testing.T, baseName string) (string, []string) {
	t.Helper()
	prev := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName), imgutil.WithHistory())
	var ids []string
	for _, n := range []string{"one", "two"} {
		p, id := testhelpers.LayerFile(t, map[string]string{"app/" + n: n})
		must(t, prev.AddLayerWithDiffIDAndHistory(p, id, v1.History{CreatedBy: "layer " + n}))
		ids = append(ids, id)
	}
	must(t, prev.Save())
	return prev.Name(), ids
}

func (s suite) reuseLayer(t *testing.T) {
	baseName, base := s.base(t)
	prevName, ids := s.previous(t, baseName)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName), imgutil.WithPreviousImage(prevName), imgutil.WithHistory())
	// Reuse in the opposite order, so that a history taken from the wrong
	// position would show.
	must(t, img.ReuseLayer(ids[1]))
	must(t, img.ReuseLayerWithHistory(ids[0], v1.History{CreatedBy: "given"}))
	got := s.saveAndRead(t, img)
	want := append(testhelpers.DiffIDs(t, base), ids[1], ids[0])
	if gotIDs := testhelpers.DiffIDs(t, got); !slices.Equal(gotIDs, want) {
		t.Fatalf("DiffIDs = %v, want %v", gotIDs, want)
	}
	cfg, err := got.ConfigFile()
	must(t, err)
	h := cfg.History
	if len(h) < 2 || h[len(h)-2].CreatedBy != "layer two" || h[len(h)-1].CreatedBy != "given" {
		t.Fatalf("history of reused layers = %+v, want 'layer two' then 'given'", h)
	}
}

func (s suite) reuseLayerMissing(t *testing.T) {
	baseName, _ := s.base(t)
	prevName, _ := s.previous(t, baseName)
	missing := "sha256:" + hex.EncodeToString(make([]byte, 32))
	var notFound imgutil.ErrLayerNotFound

	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName), imgutil.WithPreviousImage(prevName))
	err := img.ReuseLayer(missing)
	if !errors.As(err, &notFound) || notFound.DiffID != missing {
		t.Fatalf("ReuseLayer(missing) = %v, want ErrLayerNotFound{%s}", err, missing)
	}
	if !errors.Is(err, imgutil.ErrNotFound) {
		t.Errorf("ReuseLayer(missing) = %v, want it to match ErrNotFound", err)
	}
	// The existing library's words, which callers match.
	if want := "failed to find diffID " + missing + " in config file"; !strings.Contains(err.Error(), want) {
		t.Errorf("ReuseLayer(missing) = %q, want it to contain %q", err, want)
	}
	noPrev := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName))
	if err := noPrev.ReuseLayerWithHistory(missing, v1.History{}); !errors.As(err, &notFound) {
		t.Fatalf("ReuseLayerWithHistory without previous image = %v, want ErrLayerNotFound", err)
	}
	if err := noPrev.ReuseLayer("not-a-digest"); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("ReuseLayer(not-a-digest) = %v, want ErrInvalidArgument", err)
	}
}

func (s suite) addOrReuse(t *testing.T) {
	baseName, _ := s.base(t)
	prevName, ids := s.previous(t, baseName)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName), imgutil.WithPreviousImage(prevName))
	has, err := img.(interface {
		PreviousImageHasLayer(string) (bool, error)
	}).PreviousImageHasLayer(ids[0])
	if err != nil || !has {
		t.Fatalf("PreviousImageHasLayer = %v, %v; want true", has, err)
	}
	must(t, img.AddOrReuseLayerWithHistory("/does/not/exist", ids[0], v1.History{}))
	p, id := testhelpers.LayerFile(t, map[string]string{"new": "new"})
	must(t, img.AddOrReuseLayerWithHistory(p, id, v1.History{}))
	got := s.saveAndRead(t, img)
	ids2 := testhelpers.DiffIDs(t, got)
	if !slices.Equal(ids2[len(ids2)-2:], []string{ids[0], id}) {
		t.Fatalf("top DiffIDs = %v, want [%s %s]", ids2[len(ids2)-2:], ids[0], id)
	}
}

func (s suite) getLayer(t *testing.T) {
	baseName, base := s.base(t)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName))
	for _, id := range testhelpers.DiffIDs(t, base) {
		testhelpers.CheckGetLayer(t, img.GetLayer, id)
	}
	var notFound imgutil.ErrLayerNotFound
	if _, err := img.GetLayer("sha256:" + hex.EncodeToString(make([]byte, 32))); !errors.As(err, &notFound) {
		t.Fatalf("GetLayer(missing) = %v, want ErrLayerNotFound", err)
	}
}

func (s suite) rebase(t *testing.T) {
	oldName, old := s.base(t)
	newName, newBase := s.base(t)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(oldName))
	p, id := testhelpers.LayerFile(t, map[string]string{"app/x": "x"})
	must(t, img.AddLayer(p))
	oldIDs := testhelpers.DiffIDs(t, old)
	// A new base that does not exist (a typo) is refused, nothing changed.
	typo := s.h.FreshName(t)
	missing := s.h.NewImage(t, typo, imgutil.FromBaseImage(typo))
	if err := img.Rebase(oldIDs[len(oldIDs)-1], missing); !errors.Is(err, imgutil.ErrNotFound) {
		t.Fatalf("Rebase onto a missing base = %v, want ErrNotFound", err)
	}
	if top, _ := img.TopLayer(); top != id {
		t.Fatalf("a refused Rebase changed the image (top layer %s)", top)
	}
	nb := s.h.NewImage(t, newName, imgutil.FromBaseImage(newName))
	must(t, img.Rebase(oldIDs[len(oldIDs)-1], nb))
	got := s.saveAndRead(t, img)
	want := append(testhelpers.DiffIDs(t, newBase), id)
	if ids := testhelpers.DiffIDs(t, got); !slices.Equal(ids, want) {
		t.Fatalf("DiffIDs after rebase = %v, want %v", ids, want)
	}
	var notFound imgutil.ErrLayerNotFound
	if err := img.Rebase(oldIDs[len(oldIDs)-1], nb); !errors.As(err, &notFound) {
		t.Fatalf("Rebase from a layer the image lacks = %v, want ErrLayerNotFound", err)
	}
}

func (s suite) additionalNames(t *testing.T) {
	img := s.h.NewImage(t, s.h.FreshName(t))
	p, _ := testhelpers.LayerFile(t, map[string]string{"a": "a"})
	must(t, img.AddLayer(p))
	first, second := s.h.FreshName(t), s.h.FreshName(t)
	must(t, img.SaveAs(first, second))
	d1, err := s.h.Read(t, first).Digest()
	must(t, err)
	d2, err := s.h.Read(t, second).Digest()
	must(t, err)
	if d1 != d2 {
		t.Fatalf("digests under two names differ: %s, %s", d1, d2)
	}
}

func (s suite) mediaTypes(t *testing.T) {
	baseName, _ := s.base(t)
	for _, tc := range []struct {
		mt                   imgutil.MediaTypes
		manifest, lay, plain types.MediaType
	}{
		{imgutil.DockerTypes, types.DockerManifestSchema2, types.DockerLayer, types.DockerUncompressedLayer},
		{imgutil.OCITypes, types.OCIManifestSchema1, types.OCILayer, types.OCIUncompressedLayer},
	} {
		img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName), imgutil.WithMediaTypes(tc.mt))
		p, _ := testhelpers.LayerFile(t, map[string]string{"m": "m"})
		must(t, img.AddLayer(p))
		got := s.saveAndRead(t, img)
		if !s.h.KeepsMediaTypes {
			continue
		}
		m, err := got.Manifest()
		must(t, err)
		if m.MediaType != tc.manifest || m.Config.MediaType != tc.mt.ConfigType() {
			t.Errorf("%v: manifest, config types = %s, %s", tc.mt, m.MediaType, m.Config.MediaType)
		}
		for i, l := range m.Layers {
			if l.MediaType != tc.lay && (!s.h.UncompressedLayers || l.MediaType != tc.plain) {
				t.Errorf("%v: layer %d type = %s, want %s", tc.mt, i, l.MediaType, tc.lay)
			}
		}
	}
}

func (s suite) history(t *testing.T) {
	baseName, base := s.base(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName), imgutil.WithHistory(), imgutil.WithCreatedAt(at))
	p, id := testhelpers.LayerFile(t, map[string]string{"h": "h"})
	must(t, img.AddLayerWithDiffIDAndHistory(p, id, v1.History{CreatedBy: "made here"}))
	got := s.saveAndRead(t, img)
	cfg, err := got.ConfigFile()
	must(t, err)
	baseCfg, err := base.ConfigFile()
	must(t, err)
	if !cfg.Created.Equal(at) {
		t.Errorf("Created = %v, want %v", cfg.Created.Time, at)
	}
	if len(cfg.History) != len(baseCfg.History)+1 {
		t.Fatalf("history has %d entries, want %d", len(cfg.History), len(baseCfg.History)+1)
	}
	last := cfg.History[len(cfg.History)-1]
	if last.CreatedBy != "made here" || !last.Created.Equal(at) {
		t.Errorf("new history entry = %+v", last)
	}
	if cfg.History[0].CreatedBy != baseCfg.History[0].CreatedBy {
		t.Errorf("base history entry = %+v, want %+v", cfg.History[0], baseCfg.History[0])
	}

	// Without WithHistory, history is one blank entry per layer.
	plain := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName))
	must(t, plain.AddLayer(p))
	cfg, err = s.saveAndRead(t, plain).ConfigFile()
	must(t, err)
	if len(cfg.History) != len(cfg.RootFS.DiffIDs) {
		t.Fatalf("normalized history has %d entries for %d layers", len(cfg.History), len(cfg.RootFS.DiffIDs))
	}
	for i, h := range cfg.History {
		if h.CreatedBy != "" || !h.Created.Equal(imgutil.NormalizedDateTime) {
			t.Errorf("normalized history[%d] = %+v", i, h)
		}
	}
}

func (s suite) badLayers(t *testing.T) {
	name := s.h.FreshName(t)
	img := s.h.NewImage(t, name)
	if err := img.AddLayer("/does/not/exist.tar"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddLayer(missing file) = %v, want fs.ErrNotExist", err)
	}
	p, _ := testhelpers.LayerFile(t, map[string]string{"a": "a"})
	wrong := "sha256:" + hex.EncodeToString(make([]byte, 32))
	// A given diffID is checked as the layer is read out: at the latest by
	// Save, which then saves nothing.
	withWrong := s.h.NewImage(t, s.h.FreshName(t))
	err := withWrong.AddLayerWithDiffID(p, wrong)
	if err == nil {
		err = withWrong.Save()
	}
	if !errors.Is(err, imgutil.ErrDiffIDMismatch) {
		t.Errorf("AddLayerWithDiffID(wrong) then Save = %v, want ErrDiffIDMismatch", err)
	}
	if withWrong.Found() {
		t.Errorf("an image with a wrong diffID was saved")
	}
	evil := testhelpers.EvilLayerFile(t, "../escape")
	if err := img.AddLayer(evil); !errors.Is(err, imgutil.ErrUnsafeTar) {
		t.Errorf("AddLayer(tar with ../escape) = %v, want ErrUnsafeTar", err)
	}
	if ids, _ := img.UnderlyingImage().ConfigFile(); ids != nil && len(ids.RootFS.DiffIDs) != 0 {
		t.Errorf("failed adds left layers: %v", ids.RootFS.DiffIDs)
	}
	if img.Found() {
		t.Errorf("Found() = true for an image never saved")
	}
}

func (s suite) saveFile(t *testing.T) {
	baseName, base := s.base(t)
	img := s.h.NewImage(t, s.h.FreshName(t), imgutil.FromBaseImage(baseName))
	p, id := testhelpers.LayerFile(t, map[string]string{"f": "f"})
	must(t, img.AddLayer(p))
	path, err := img.SaveFile()
	must(t, err)
	t.Cleanup(func() { os.Remove(path) })
	loaded, err := tarball.ImageFromPath(path, nil)
	must(t, err)
	testhelpers.CheckImage(t, loaded)
	want := append(testhelpers.DiffIDs(t, base), id)
	if ids := testhelpers.DiffIDs(t, loaded); !slices.Equal(ids, want) {
		t.Fatalf("SaveFile DiffIDs = %v, want %v", ids, want)
	}
}

func (s suite) identifierAndDelete(t *testing.T) {
	img := s.h.NewImage(t, s.h.FreshName(t))
	p, _ := testhelpers.LayerFile(t, map[string]string{"i": "i"})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	id, err := img.Identifier()
	must(t, err)
	if id == nil || id.String() == "" {
		t.Fatalf("Identifier() = %v after Save", id)
	}
	if !img.Valid() {
		t.Fatalf("Valid() = false after Save")
	}
	must(t, img.Delete())
	if img.Found() {
		t.Fatalf("Found() = true after Delete")
	}
}
