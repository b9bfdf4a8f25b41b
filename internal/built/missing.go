package built

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// Store answers what a store holds of an index's blobs: Has whether it
// holds the blob h; Manifest the image manifest d, read from it (called
// only once Has found it).
type Store struct {
	Has      func(h v1.Hash) (bool, error)
	Manifest func(d v1.Descriptor) (*v1.Manifest, error)
	// Index is the child index d, read from the store.
	Index func(d v1.Descriptor) (*v1.IndexManifest, error)
}

// Missing lists the children of the index m that s does not hold whole:
// an image lacking its manifest, config or a distributable layer (a
// non-distributable one, a Windows base, is never exported nor pulled);
// an index lacking any of its images (indexes nested deeper are refused,
// imgerr.ErrInvalidArgument); another child lacking its blob. An error of
// s ends the walk.
func Missing(m *v1.IndexManifest, s Store) ([]v1.Descriptor, error) {
	var missing []v1.Descriptor
	for _, d := range m.Manifests {
		held, err := holds(s, d, 0)
		if err != nil {
			return nil, err
		}
		if !held {
			missing = append(missing, d)
		}
	}
	return missing, nil
}

func holds(s Store, d v1.Descriptor, depth int) (bool, error) {
	if ok, err := s.Has(d.Digest); !ok || err != nil {
		return false, err
	}
	switch {
	case d.MediaType.IsIndex():
		if depth > 0 {
			return false, fmt.Errorf("index %s nests indexes two deep: %w", d.Digest, imgerr.ErrInvalidArgument)
		}
		child, err := s.Index(d)
		if err != nil {
			return false, fmt.Errorf("reading index %s: %w", d.Digest, err)
		}
		for _, cd := range child.Manifests {
			if ok, err := holds(s, cd, depth+1); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	case !d.MediaType.IsImage():
		return true, nil
	}
	mf, err := s.Manifest(d)
	if err != nil {
		return false, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
	}
	if ok, err := s.Has(mf.Config.Digest); !ok || err != nil {
		return false, err
	}
	for _, l := range mf.Layers {
		if !l.MediaType.IsDistributable() {
			continue
		}
		if ok, err := s.Has(l.Digest); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}
