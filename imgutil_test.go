package imgutil_test

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/imgbridge/imgutil"
)

func TestSaveErrorUnwraps(t *testing.T) {
	err := fmt.Errorf("saving: %w", imgutil.SaveError{Errors: []imgutil.SaveDiagnostic{
		{ImageName: "a", Cause: fs.ErrPermission},
		{ImageName: "b", Cause: imgutil.ErrLayerNotFound{DiffID: "sha256:x"}},
	}})
	var saveErr imgutil.SaveError
	if !errors.As(err, &saveErr) || len(saveErr.Errors) != 2 {
		t.Fatalf("errors.As(SaveError) failed on %v", err)
	}
	if !errors.Is(err, fs.ErrPermission) || !errors.Is(err, imgutil.ErrNotFound) {
		t.Fatalf("SaveError does not unwrap to its causes: %v", err)
	}
	var lnf imgutil.ErrLayerNotFound
	if !errors.As(err, &lnf) || lnf.DiffID != "sha256:x" {
		t.Fatalf("errors.As(ErrLayerNotFound) = %v", lnf)
	}
}

func TestNotFoundInteroperates(t *testing.T) {
	if !cerrdefs.IsNotFound(imgutil.ErrLayerNotFound{DiffID: "sha256:x"}) {
		t.Error("containerd errdefs does not see ErrLayerNotFound as not-found")
	}
	if !errors.Is(imgutil.ErrUnsafeTar, imgutil.ErrInvalidArgument) || !errors.Is(imgutil.ErrDiffIDMismatch, imgutil.ErrInvalidArgument) {
		t.Error("ErrUnsafeTar and ErrDiffIDMismatch must match ErrInvalidArgument")
	}
	if !errors.Is(imgutil.ErrUnknownMediaType("x"), imgutil.ErrInvalidArgument) {
		t.Error("ErrUnknownMediaType must match ErrInvalidArgument")
	}
	// Our classes are containerd's classes too, wrapped or not; our names
	// still match only themselves.
	for _, tc := range []struct {
		err   error
		class func(error) bool
		name  string
	}{
		{imgutil.ErrNotFound, cerrdefs.IsNotFound, "IsNotFound"},
		{fmt.Errorf("image x: %w", imgutil.ErrNotFound), cerrdefs.IsNotFound, "IsNotFound"},
		{imgutil.ErrManifestUndefined, cerrdefs.IsNotFound, "IsNotFound"},
		{imgutil.ErrInvalidArgument, cerrdefs.IsInvalidArgument, "IsInvalidArgument"},
		{fmt.Errorf("layer: %w", imgutil.ErrUnsafeTar), cerrdefs.IsInvalidArgument, "IsInvalidArgument"},
		{imgutil.ErrDiffIDMismatch, cerrdefs.IsInvalidArgument, "IsInvalidArgument"},
		{fmt.Errorf("push: %w", imgutil.ErrUnauthorized), cerrdefs.IsUnauthorized, "IsUnauthorized"},
	} {
		if !tc.class(tc.err) {
			t.Errorf("cerrdefs.%s(%v) = false", tc.name, tc.err)
		}
	}
	if errors.Is(imgutil.ErrNotFound, imgutil.ErrInvalidArgument) || errors.Is(imgutil.ErrUnauthorized, imgutil.ErrNotFound) ||
		cerrdefs.IsNotFound(imgutil.ErrUnauthorized) {
		t.Error("error classes match one another")
	}
}

func TestNormalizedHistory(t *testing.T) {
	h := []v1.History{{CreatedBy: "a"}, {CreatedBy: "env", EmptyLayer: true}, {CreatedBy: "b"}}
	if got := imgutil.NormalizedHistory(h, 2); len(got) != 2 || got[0].CreatedBy != "a" || got[1].CreatedBy != "b" {
		t.Errorf("NormalizedHistory(aligned) = %+v", got)
	}
	if got := imgutil.NormalizedHistory(h, 3); len(got) != 3 || got[0].CreatedBy != "" {
		t.Errorf("NormalizedHistory(misaligned) = %+v, want 3 blank entries", got)
	}
}

func TestSmallHelpers(t *testing.T) {
	if got := imgutil.MakeFileSafeName("registry:5000/a/b:tag@sha256:x"); got != "registry-5000-a-b-tag-sha256-x" {
		t.Errorf("MakeFileSafeName = %q", got)
	}
	s := imgutil.NewStringSet()
	for _, v := range []string{"b", "a", "b"} {
		s.Add(v)
	}
	s.Remove("zz")
	if got := s.StringSlice(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("StringSlice = %v", got)
	}
	for _, tc := range []struct {
		in                    imgutil.MediaTypes
		manifest, config, lay types.MediaType
	}{
		{imgutil.OCITypes, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer},
		{imgutil.DockerTypes, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer},
		{imgutil.DefaultTypes, "", "", ""},
	} {
		if tc.in.ManifestType() != tc.manifest || tc.in.ConfigType() != tc.config || tc.in.LayerType() != tc.lay {
			t.Errorf("%d: types = %s %s %s", tc.in, tc.in.ManifestType(), tc.in.ConfigType(), tc.in.LayerType())
		}
	}
	if got := imgutil.GetPreferredMediaTypes(imgutil.ImageOptions{}); got != imgutil.OCITypes {
		t.Errorf("GetPreferredMediaTypes(scratch) = %v, want OCITypes", got)
	}
}

func TestEnsureMediaTypesAndLayers(t *testing.T) {
	img, err := random.Image(128, 2)
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := imgutil.EnsureMediaTypesAndLayers(img, imgutil.OCITypes, imgutil.PreserveLayers)
	if err != nil || !changed {
		t.Fatalf("EnsureMediaTypesAndLayers(OCI) = %v, %v", changed, err)
	}
	if err := validate.Image(out); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	if mt, _ := out.MediaType(); mt != types.OCIManifestSchema1 {
		t.Fatalf("media type = %s", mt)
	}
	if _, changed, err := imgutil.EnsureMediaTypesAndLayers(out, imgutil.DefaultTypes, imgutil.PreserveLayers); err != nil || changed {
		t.Fatalf("EnsureMediaTypesAndLayers(Default) = %v, %v; want unchanged", changed, err)
	}
}

// TestCNBIndexCopiesByValue: callers copy the index struct (idx := *cnbIdx);
// the copy shares the lock and edits stay safe.
func TestCNBIndexCopiesByValue(t *testing.T) {
	idx, err := imgutil.NewCNBIndex("example.com/idx:latest", imgutil.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp := *idx
	img, err := random.Image(16, 1)
	if err != nil {
		t.Fatal(err)
	}
	cp.AddManifest(img)
	m, err := cp.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("copy's index = %v (%v), want one manifest", m, err)
	}
	var literal imgutil.CNBIndex
	literal.ImageIndex = imgutil.NewEmptyDockerIndex()
	literal.AddManifest(img)
}
