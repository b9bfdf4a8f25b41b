package fakes

import (
	"errors"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
)

// errUnimplemented is what the index answers beyond its manifests.
var errUnimplemented = errors.New("fakes.ImageIndex: unimplemented")

// ImageIndex is an index of Manifests; IndexManifest is all it does.
type ImageIndex struct {
	Manifests []v1.Descriptor
}

// IndexManifest returns an OCI index holding the manifests.
func (i ImageIndex) IndexManifest() (*v1.IndexManifest, error) {
	return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: append([]v1.Descriptor(nil), i.Manifests...)}, nil
}

// AddManifest does nothing.
func (i ImageIndex) AddManifest(_ v1.Image) {}

// Annotations is unimplemented.
func (i ImageIndex) Annotations(_ name.Digest) (map[string]string, error) {
	return nil, errUnimplemented
}

// Architecture is unimplemented.
func (i ImageIndex) Architecture(_ name.Digest) (string, error) { return "", errUnimplemented }

// DeleteDir is unimplemented.
func (i ImageIndex) DeleteDir() error { return errUnimplemented }

// Inspect is unimplemented.
func (i ImageIndex) Inspect() (string, error) { return "", errUnimplemented }

// OS is unimplemented.
func (i ImageIndex) OS(_ name.Digest) (string, error) { return "", errUnimplemented }

// OSFeatures is unimplemented.
func (i ImageIndex) OSFeatures(_ name.Digest) ([]string, error) { return nil, errUnimplemented }

// OSVersion is unimplemented.
func (i ImageIndex) OSVersion(_ name.Digest) (string, error) { return "", errUnimplemented }

// Push is unimplemented.
func (i ImageIndex) Push(_ ...imgutil.IndexOption) error { return errUnimplemented }

// RemoveManifest is unimplemented.
func (i ImageIndex) RemoveManifest(_ name.Digest) error { return errUnimplemented }

// SaveDir is unimplemented.
func (i ImageIndex) SaveDir() error { return errUnimplemented }

// SetAnnotations is unimplemented.
func (i ImageIndex) SetAnnotations(_ name.Digest, _ map[string]string) error {
	return errUnimplemented
}

// SetArchitecture is unimplemented.
func (i ImageIndex) SetArchitecture(_ name.Digest, _ string) error { return errUnimplemented }

// SetOS is unimplemented.
func (i ImageIndex) SetOS(_ name.Digest, _ string) error { return errUnimplemented }

// SetVariant is unimplemented.
func (i ImageIndex) SetVariant(_ name.Digest, _ string) error { return errUnimplemented }

// Variant is unimplemented.
func (i ImageIndex) Variant(_ name.Digest) (string, error) { return "", errUnimplemented }

var _ imgutil.ImageIndex = ImageIndex{}
