package fakes_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/fakes"
	"github.com/imgbridge/imgutil/local"
)

type hdr struct {
	name, link string
	typ        byte
}

func layerFile(t *testing.T, entries ...hdr) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "layer-*.tar")
	must(t, err)
	tw := tar.NewWriter(f)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644}
		if e.typ == tar.TypeReg {
			h.Size = 1
		}
		must(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte("x"))
			must(t, err)
		}
	}
	must(t, tw.Close())
	must(t, f.Close())
	return f.Name()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewImageDefaults(t *testing.T) {
	id := local.IDIdentifier{ImageID: "abc"}
	img := fakes.NewImage("app:latest", "sha256:top", id)
	labels, _ := img.Labels()
	cmd, _ := img.Cmd()
	osName, _ := img.OS()
	arch, _ := img.Architecture()
	created, _ := img.CreatedAt()
	top, _ := img.TopLayer()
	got, _ := img.Identifier()
	env, _ := img.Env("PATH")
	if len(labels) != 0 || !slices.Equal(cmd, []string{"initialCMD"}) || osName != "linux" || arch != "amd64" ||
		time.Since(created) > time.Minute || top != "sha256:top" || got != id || env != "" || img.Name() != "app:latest" {
		t.Fatalf("defaults: labels %v cmd %v os %s arch %s created %v top %s id %v", labels, cmd, osName, arch, created, top, got)
	}
	if !img.Found() || !img.Valid() || img.Kind() != "" || img.UnderlyingImage() != nil {
		t.Fatal("a new fake is found, valid, of no kind, with no underlying image")
	}
}

func TestGettersReturnWhatSettersStored(t *testing.T) {
	img := fakes.NewImage("app", "", nil)
	must(t, img.SetLabel("a", "1"))
	must(t, img.SetLabel("b", "2"))
	must(t, img.RemoveLabel("b"))
	must(t, img.SetEnv("K", "V"))
	must(t, img.SetCmd("run"))
	must(t, img.SetEntrypoint("/cnb/process/web"))
	must(t, img.SetWorkingDir("/workspace"))
	must(t, img.SetOS("windows"))
	must(t, img.SetOSVersion("10.0"))
	must(t, img.SetArchitecture("arm64"))
	must(t, img.SetVariant("v8"))
	when := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, img.SetCreatedAt(when))
	must(t, img.SetHistory([]v1.History{{CreatedBy: "x"}}))
	must(t, img.SetFeatures([]string{"f"}))
	must(t, img.SetOSFeatures([]string{"f"}))
	must(t, img.SetAnnotations(map[string]string{"a": "b"}))
	img.SetManifestSize(42)
	img.SetIdentifier(local.IDIdentifier{ImageID: "new"})
	img.Rename("renamed")

	labels, _ := img.Labels()
	labels["mutated"] = "yes"
	again, _ := img.Labels()
	l, _ := img.Label("a")
	missing, err := img.Label("nope")
	env, _ := img.Env("K")
	cmd, _ := img.Cmd()
	ep, _ := img.Entrypoint()
	wd, _ := img.WorkingDir()
	osName, _ := img.OS()
	osv, _ := img.OSVersion()
	arch, _ := img.Architecture()
	variant, _ := img.Variant()
	created, _ := img.CreatedAt()
	hist, _ := img.History()
	feats, _ := img.Features()
	osFeats, _ := img.OSFeatures()
	ann, _ := img.Annotations()
	size, _ := img.ManifestSize()
	id, _ := img.Identifier()
	digest, _ := img.Digest()
	mt, _ := img.MediaType()
	if len(again) != 1 || l != "1" || missing != "" || err != nil || env != "V" || !slices.Equal(cmd, []string{"run"}) ||
		!slices.Equal(ep, []string{"/cnb/process/web"}) || wd != "/workspace" || osName != "windows" || osv != "10.0" ||
		arch != "arm64" || variant != "v8" || !created.Equal(when) || len(hist) != 1 || feats != nil || osFeats != nil ||
		ann != nil || size != 42 || id.String() != "new" || img.Name() != "renamed" || digest != (v1.Hash{}) || mt != "" {
		t.Fatal("a getter did not return what its setter stored")
	}
	if _, err := img.SaveFile(); err == nil {
		t.Fatal("SaveFile of a fake succeeded")
	}
}

func TestLayersAndReuse(t *testing.T) {
	img := fakes.NewImage("app", "", nil)
	app := layerFile(t, hdr{"/workspace/", "", tar.TypeDir}, hdr{"/workspace/app.js", "", tar.TypeReg})
	cfg := layerFile(t, hdr{"/cnb/config.toml", "", tar.TypeReg})
	must(t, img.AddLayer(app))
	must(t, img.AddLayerWithDiffIDAndHistory(cfg, "sha256:cfg", v1.History{CreatedBy: "config"}))
	must(t, img.AddLayerWithDiffID(cfg, "sha256:cfg2"))
	if img.AppLayerPath() != app || img.ConfigLayerPath() != cfg || img.NumberOfAddedLayers() != 3 {
		t.Fatalf("AppLayerPath %s ConfigLayerPath %s count %d", img.AppLayerPath(), img.ConfigLayerPath(), img.NumberOfAddedLayers())
	}
	b, _ := os.ReadFile(app)
	appID := fakesDiffID(b)
	rc, err := img.GetLayer(appID)
	must(t, err)
	rc.Close()
	if _, err := img.GetLayer("sha256:unknown"); err == nil || !strings.Contains(err.Error(), "sha256:unknown") {
		t.Fatalf("GetLayer(unknown) = %v, want an error naming it", err)
	}

	prev := layerFile(t, hdr{"/layers/", "", tar.TypeDir})
	if err := img.ReuseLayer("sha256:prev"); err == nil || !strings.Contains(err.Error(), "sha256:prev") {
		t.Fatalf("ReuseLayer of an unregistered layer = %v, want an error naming it", err)
	}
	img.AddPreviousLayer("sha256:prev", prev)
	img.AddPreviousLayer("sha256:prev2", prev)
	must(t, img.ReuseLayer("sha256:prev"))
	must(t, img.ReuseLayerWithHistory("sha256:prev2", v1.History{CreatedBy: "reused"}))
	must(t, img.AddOrReuseLayerWithHistory(app, "sha256:prev", v1.History{}))
	if got := img.ReusedLayers(); !slices.Equal(got, []string{"sha256:prev", "sha256:prev2", "sha256:prev"}) {
		t.Fatalf("ReusedLayers = %v", got)
	}
	rc, err = img.GetLayer("sha256:prev")
	must(t, err)
	rc.Close()
	hist, _ := img.History()
	if len(hist) != 5 || hist[1].CreatedBy != "config" || hist[3].CreatedBy != "reused" {
		t.Fatalf("history = %+v: one entry per add and per reuse with history", hist)
	}
}

func fakesDiffID(b []byte) string { return sha256String(b) }

func TestSaveAs(t *testing.T) {
	img := fakes.NewImage("registry.example/app:latest", "", nil)
	p := layerFile(t, hdr{"/workspace/a", "", tar.TypeReg})
	must(t, img.AddLayer(p))
	must(t, img.AnnotateRefName("my-ref"))
	err := img.SaveAs("registry.example/app:latest", "registry.example/app:v1", "Not A Valid:Ref:")
	var se imgutil.SaveError
	if !errors.As(err, &se) || len(se.Errors) != 1 || se.Errors[0].ImageName != "Not A Valid:Ref:" {
		t.Fatalf("SaveAs with a bad name = %v, want one SaveDiagnostic for it", err)
	}
	names := img.SavedNames()
	slices.Sort(names)
	if !img.IsSaved() || !slices.Equal(names, []string{"registry.example/app:latest", "registry.example/app:v1"}) {
		t.Fatalf("SavedNames = %v", names)
	}
	if got := img.SavedAnnotations(); got["org.opencontainers.image.ref.name"] != "my-ref" {
		t.Fatalf("SavedAnnotations = %v", got)
	}
	// The layers were copied: the original may go.
	must(t, os.Remove(p))
	if _, err := os.Stat(img.AppLayerPath()); err != nil {
		t.Fatalf("the saved copy of the layer is gone: %v", err)
	}
	if _, err := img.FindLayerWithPath("/workspace/a"); err != nil {
		t.Fatal(err)
	}
	must(t, img.Save())
	copyDir := filepath.Dir(img.AppLayerPath())
	must(t, img.Cleanup())
	if _, err := os.Stat(copyDir); !os.IsNotExist(err) {
		t.Fatalf("Cleanup left %s", copyDir)
	}
}

func TestFindLayerWithPath(t *testing.T) {
	img := fakes.NewImage("app", "", nil)
	older := layerFile(t, hdr{"/cnb/", "", tar.TypeDir}, hdr{"/cnb/x", "", tar.TypeReg})
	empty := layerFile(t)
	newer := layerFile(t, hdr{"/cnb/x", "", tar.TypeReg}, hdr{"/cnb/link", "/cnb/x", tar.TypeSymlink})
	for _, p := range []string{older, empty, newer} {
		must(t, img.AddLayer(p))
	}
	got, err := img.FindLayerWithPath("/cnb/x")
	must(t, err)
	if got != newer {
		t.Fatalf("FindLayerWithPath found %s, want the newest layer %s", got, newer)
	}
	_, err = img.FindLayerWithPath("/nope")
	if err == nil {
		t.Fatal("FindLayerWithPath of a missing path succeeded")
	}
	for _, want := range []string{"[D] /cnb/", "[F] /cnb/x", "[S] /cnb/link -> /cnb/x", "(empty)", older, newer} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDeleteAndRebase(t *testing.T) {
	img := fakes.NewImage("app", "", nil)
	must(t, img.Rebase("sha256:old", fakes.NewImage("new-base:1", "", nil)))
	if img.Base() != "new-base:1" {
		t.Fatalf("Base = %s", img.Base())
	}
	must(t, img.Delete())
	if img.Found() || img.Valid() {
		t.Fatal("a deleted fake is still found or valid")
	}
}

func TestImageIndex(t *testing.T) {
	idx := fakes.ImageIndex{Manifests: []v1.Descriptor{{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}}}
	m, err := idx.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 1 {
		t.Fatalf("IndexManifest holds %d manifests", len(m.Manifests))
	}
	if err := idx.SaveDir(); err == nil {
		t.Fatal("SaveDir of the fake index succeeded")
	}
}

func sha256String(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestSaveLayersWithoutFiles: callers' tests give the fake layers with no
// file (a previous layer registered with an empty path and reused, a
// mocked layer added with an empty path); it saves them, as the existing
// fake does.
func TestSaveLayersWithoutFiles(t *testing.T) {
	img := fakes.NewImage("registry.example/app:latest", "", nil)
	img.AddPreviousLayer("sha256:launcher-digest", "")
	must(t, img.ReuseLayer("sha256:launcher-digest"))
	must(t, img.AddLayerWithDiffID("", "sha256:mocked"))
	p := layerFile(t, hdr{"/workspace/a", "", tar.TypeReg})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	if !img.IsSaved() || !slices.Equal(img.ReusedLayers(), []string{"sha256:launcher-digest"}) {
		t.Fatalf("saved %v, reused %v", img.IsSaved(), img.ReusedLayers())
	}
	if _, err := img.FindLayerWithPath("/workspace/a"); err != nil {
		t.Fatal(err)
	}
	must(t, img.Cleanup())
}
