package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
)

// sparseImage is an image of the layout at dir whose layer blobs may be
// absent (a sparse layout, as layout/sparse writes and the lifecycle keeps
// run images): such a layer is described as the manifest and config say,
// and only reading its bytes fails.
type sparseImage struct {
	v1.Image
	dir string
}

// withAbsentLayers returns img (of the layout at dir) with its absent layer
// blobs marked.
func withAbsentLayers(img v1.Image, dir string) v1.Image { return sparseImage{Image: img, dir: dir} }

func (s sparseImage) mark(l v1.Layer) v1.Layer {
	d, err := l.Digest()
	if err != nil {
		return l
	}
	if _, err := os.Stat(filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)); errors.Is(err, fs.ErrNotExist) {
		return &absentLayer{Layer: l, digest: d, dir: s.dir}
	}
	return l
}

func (s sparseImage) Layers() ([]v1.Layer, error) {
	ls, err := s.Image.Layers()
	if err != nil {
		return nil, err
	}
	for i, l := range ls {
		ls[i] = s.mark(l)
	}
	return ls, nil
}

func (s sparseImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := s.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return s.mark(l), nil
}

func (s sparseImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := s.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return s.mark(l), nil
}

// absentLayer is a layer whose blob is not in its layout.
type absentLayer struct {
	v1.Layer
	digest v1.Hash
	dir    string
	// mediaType overrides the layer's own when set (WithMediaType).
	mediaType types.MediaType
}

// Absent tells writers to leave the blob absent where they write too.
func (a *absentLayer) Absent() bool { return true }

func (a *absentLayer) err() error {
	return fmt.Errorf("layer %s is absent from the layout %s: %w", a.digest, a.dir, imgutil.ErrNotFound)
}

func (a *absentLayer) Compressed() (io.ReadCloser, error)   { return nil, a.err() }
func (a *absentLayer) Uncompressed() (io.ReadCloser, error) { return nil, a.err() }

func (a *absentLayer) MediaType() (types.MediaType, error) {
	if a.mediaType != "" {
		return a.mediaType, nil
	}
	return a.Layer.MediaType()
}

// WithMediaType keeps the layer absent under another media type.
func (a *absentLayer) WithMediaType(mt types.MediaType) v1.Layer {
	c := *a
	c.mediaType = mt
	return &c
}
