package imgutil

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TaggableIndex is an index manifest that can be tagged in a registry
// (remote.Tag) without its children at hand.
type TaggableIndex struct {
	*v1.IndexManifest
}

// NewTaggableIndex wraps manifest.
func NewTaggableIndex(manifest *v1.IndexManifest) *TaggableIndex {
	return &TaggableIndex{IndexManifest: manifest}
}

// RawManifest returns the index manifest as JSON.
func (t *TaggableIndex) RawManifest() ([]byte, error) {
	b, err := json.Marshal(t.IndexManifest)
	if err != nil {
		return nil, fmt.Errorf("encoding index manifest: %w", err)
	}
	return b, nil
}

// Digest returns the sha256 digest of RawManifest.
func (t *TaggableIndex) Digest() (v1.Hash, error) {
	b, err := t.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, nil
}

// MediaType returns the index media type, OCI when the manifest has none.
func (t *TaggableIndex) MediaType() (types.MediaType, error) {
	if t.IndexManifest.MediaType != "" {
		return t.IndexManifest.MediaType, nil
	}
	return types.OCIImageIndex, nil
}

// Size returns the length of RawManifest.
func (t *TaggableIndex) Size() (int64, error) {
	b, err := t.RawManifest()
	return int64(len(b)), err
}
