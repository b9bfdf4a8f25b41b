package layout_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcr "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/layout/sparse"
	"github.com/imgbridge/imgutil/testhelpers"
)

func TestIndex(t *testing.T) {
	xdg := t.TempDir()
	idx, err := layout.NewIndex("example.com/team/app:v1", imgutil.WithXDGRuntimePath(xdg))
	must(t, err)
	amd, arm := testhelpers.PlatformImage(t, "amd64"), testhelpers.PlatformImage(t, "arm64")
	idx.AddManifest(amd)
	idx.AddManifest(arm)
	armDigest, err := arm.Digest()
	must(t, err)
	ref, err := name.NewDigest("example.com/team/app@" + armDigest.String())
	must(t, err)

	if got, err := idx.Architecture(ref); err != nil || got != "arm64" {
		t.Fatalf("Architecture = %q, %v; want arm64", got, err)
	}
	must(t, idx.SetVariant(ref, "v8"))
	must(t, idx.SetAnnotations(ref, map[string]string{"k": "v"}))
	if got, _ := idx.Variant(ref); got != "v8" {
		t.Errorf("Variant = %q, want v8", got)
	}
	must(t, idx.SaveDir())

	dir := filepath.Join(xdg, imgutil.MakeFileSafeName("example.com/team/app:v1"))
	saved, err := ggcr.ImageIndexFromPath(dir)
	must(t, err)
	m, err := saved.IndexManifest()
	must(t, err)
	// The descriptor's variant was edited on purpose, so validate each child
	// (validate.Index would compare the descriptor platform with the config).
	for _, d := range m.Manifests {
		child, err := saved.Image(d.Digest)
		must(t, err)
		if err := validate.Image(child); err != nil {
			t.Fatalf("validate.Image(%s): %v", d.Digest, err)
		}
	}
	if len(m.Manifests) != 2 || m.MediaType != types.OCIImageIndex {
		t.Fatalf("saved index = %+v", m)
	}
	if p := m.Manifests[1].Platform; p == nil || p.Architecture != "arm64" || p.Variant != "v8" || m.Manifests[1].Annotations["k"] != "v" {
		t.Fatalf("saved arm64 descriptor = %+v", m.Manifests[1])
	}

	// Reopen the saved index as a base, remove one manifest.
	again, err := layout.NewIndex("example.com/team/app:v2", imgutil.FromBaseIndex(dir), imgutil.WithXDGRuntimePath(xdg))
	must(t, err)
	must(t, again.RemoveManifest(ref))
	if _, err := again.OS(ref); !errors.Is(err, imgutil.ErrNotFound) {
		t.Fatalf("OS of a removed manifest = %v, want ErrNotFound", err)
	}
	if im, _ := again.IndexManifest(); len(im.Manifests) != 1 {
		t.Fatalf("after RemoveManifest the index has %d manifests", len(im.Manifests))
	}
	must(t, idx.DeleteDir())
	if _, err := ggcr.ImageIndexFromPath(dir); err == nil {
		t.Fatal("DeleteDir left the index directory")
	}
	if _, err := layout.NewIndex("x", imgutil.WithMediaType(types.MediaType("bogus"))); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Fatalf("WithMediaType(bogus) = %v, want ErrInvalidArgument", err)
	}
}

// TestIndexDetails: a missing base layout starts an empty index; an empty
// XDG path stays empty; platform setters read back through the getters on
// a descriptor that had no platform.
func TestIndexDetails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-layout-here")
	idx, err := layout.NewIndex("example.com/team/app:v1", imgutil.FromBaseIndex(missing), imgutil.WithXDGRuntimePath(""))
	must(t, err)
	if idx.XdgPath != "" {
		t.Errorf("XdgPath = %q, want it kept empty", idx.XdgPath)
	}
	m, err := idx.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 0 {
		t.Fatalf("index from a missing layout holds %d manifests", len(m.Manifests))
	}

	// A base index whose descriptor has no platform.
	img := testhelpers.PlatformImage(t, "amd64")
	base := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1}})
	dir := filepath.Join(t.TempDir(), "base")
	_, err = ggcr.Write(dir, base)
	must(t, err)
	idx, err = layout.NewIndex("example.com/team/app:v1", imgutil.FromBaseIndex(dir), imgutil.WithXDGRuntimePath(t.TempDir()))
	must(t, err)
	d, err := img.Digest()
	must(t, err)
	ref, err := name.NewDigest("example.com/team/app@" + d.String())
	must(t, err)
	must(t, idx.SetOS(ref, "windows"))
	must(t, idx.SetArchitecture(ref, "arm64"))
	must(t, idx.SetVariant(ref, "v8"))
	osName, _ := idx.OS(ref)
	arch, _ := idx.Architecture(ref)
	variant, _ := idx.Variant(ref)
	if osName != "windows" || arch != "arm64" || variant != "v8" {
		t.Fatalf("after setting: os %q arch %q variant %q", osName, arch, variant)
	}

	// Set on a descriptor with no OS (pack's manifest annotate): each field
	// reads back as set, the others from the image.
	idx, err = layout.NewIndex("example.com/team/app:v1", imgutil.FromBaseIndex(dir), imgutil.WithXDGRuntimePath(t.TempDir()))
	must(t, err)
	must(t, idx.SetArchitecture(ref, "arm"))
	must(t, idx.SetVariant(ref, "v6"))
	osName, _ = idx.OS(ref)
	arch, _ = idx.Architecture(ref)
	variant, _ = idx.Variant(ref)
	if osName != "linux" || arch != "arm" || variant != "v6" {
		t.Fatalf("after setting arch and variant alone: os %q arch %q variant %q, want linux arm v6", osName, arch, variant)
	}
}

// TestSparseIndexSaveDir: an index read from a sparse layout saves with
// its layer blobs left absent.
func TestSparseIndexSaveDir(t *testing.T) {
	from := testhelpers.PlatformImage(t, "amd64")
	dir := filepath.Join(t.TempDir(), "sparse")
	sp, err := sparse.NewImage(dir, from)
	must(t, err)
	must(t, sp.Save())
	xdg := t.TempDir()
	idx, err := layout.NewIndex("example.com/team/sparse:v1", imgutil.FromBaseIndex(dir), imgutil.WithXDGRuntimePath(xdg))
	must(t, err)
	must(t, idx.SaveDir())
	saved := filepath.Join(xdg, imgutil.MakeFileSafeName("example.com/team/sparse:v1"))
	testhelpers.AssertBlobsLen(t, saved, 2)
}

// TestIndexOfAbsentImages: pack keeps, for `pack manifest create/add/
// annotate/push`, layouts holding the index and the manifests only. Every
// operation works on them and writes what it has; absent blobs stay absent.
func TestIndexOfAbsentImages(t *testing.T) {
	amd, arm := testhelpers.PlatformImage(t, "amd64"), testhelpers.PlatformImage(t, "arm64")
	base := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	dir := filepath.Join(t.TempDir(), "base")
	_, err := ggcr.Write(dir, base)
	must(t, err)
	// Leave the manifests only: configs and layers are gone.
	var manifests []string
	for _, img := range []v1.Image{amd, arm} {
		d, err := img.Digest()
		must(t, err)
		manifests = append(manifests, d.Hex)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	must(t, err)
	for _, b := range blobs {
		if !slices.Contains(manifests, b.Name()) {
			must(t, os.Remove(filepath.Join(dir, "blobs", "sha256", b.Name())))
		}
	}
	xdg := t.TempDir()
	idx, err := layout.NewIndex("example.com/team/app:v1", imgutil.FromBaseIndex(dir), imgutil.WithXDGRuntimePath(xdg))
	must(t, err)
	ref := func(img v1.Image) name.Digest {
		d, err := img.Digest()
		must(t, err)
		r, err := name.NewDigest("example.com/team/app@" + d.String())
		must(t, err)
		return r
	}
	must(t, idx.SetVariant(ref(arm), "v8"))
	must(t, idx.SetAnnotations(ref(amd), map[string]string{"k": "v"}))
	must(t, idx.SetOS(ref(amd), "linux"))
	if v, err := idx.Variant(ref(arm)); err != nil || v != "v8" {
		t.Errorf("Variant = %q, %v", v, err)
	}
	if a, err := idx.Architecture(ref(arm)); err != nil || a != "arm64" {
		t.Errorf("Architecture = %q, %v", a, err)
	}
	if _, err := idx.Inspect(); err != nil {
		t.Errorf("Inspect: %v", err)
	}
	must(t, idx.SaveDir())
	saved := filepath.Join(xdg, imgutil.MakeFileSafeName("example.com/team/app:v1"))
	testhelpers.AssertBlobsLen(t, saved, 2)
	added := testhelpers.PlatformImage(t, "s390x")
	idx.AddManifest(added)
	must(t, idx.RemoveManifest(ref(amd)))
	must(t, idx.SaveDir())
	m, err := idx.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 2 {
		t.Fatalf("after add and remove the index holds %d manifests, want 2", len(m.Manifests))
	}
	must(t, idx.DeleteDir())
}
