package imgutil

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// editedIndex is an immutable v1.ImageIndex: a manifest list whose children
// are images added in memory or children of the index it started from.
type editedIndex struct {
	manifest *v1.IndexManifest
	images   map[v1.Hash]v1.Image
	base     v1.ImageIndex
}

var _ v1.ImageIndex = (*editedIndex)(nil)

func (e *editedIndex) clone() *editedIndex {
	return &editedIndex{manifest: e.manifest.DeepCopy(), images: maps.Clone(e.images), base: e.base}
}

// find returns the position of the manifest for digest.
func (e *editedIndex) find(digest name.Digest) (int, error) {
	h, err := v1.NewHash(digest.DigestStr())
	if err != nil {
		return 0, fmt.Errorf("parsing digest %q: %w: %w", digest, ErrInvalidArgument, err)
	}
	for i, m := range e.manifest.Manifests {
		if m.Digest == h {
			return i, nil
		}
	}
	return 0, fmt.Errorf("manifest %s: %w", h, ErrManifestUndefined)
}

func (e *editedIndex) MediaType() (types.MediaType, error) { return e.manifest.MediaType, nil }

func (e *editedIndex) RawManifest() ([]byte, error) { return json.Marshal(e.manifest) }

func (e *editedIndex) Digest() (v1.Hash, error) { return NewTaggableIndex(e.manifest).Digest() }

func (e *editedIndex) Size() (int64, error) { return NewTaggableIndex(e.manifest).Size() }

func (e *editedIndex) IndexManifest() (*v1.IndexManifest, error) { return e.manifest.DeepCopy(), nil }

func (e *editedIndex) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := e.images[h]; ok {
		return img, nil
	}
	return e.base.Image(h)
}

func (e *editedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return e.base.ImageIndex(h)
}
