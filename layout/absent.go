package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/verified"
)

// sparseImage is an image of the layout at dir whose layer blobs may be
// absent (a sparse layout, as layout/sparse writes and the lifecycle keeps
// run images): such a layer is described as the manifest and config say,
// and only reading its bytes fails.
type sparseImage struct {
	v1.Image
	dir     string
	records *verified.Records
}

// withAbsentLayers returns img (of the layout at dir) with its absent layer
// blobs marked; blobs found to match their digest are recorded in records.
func withAbsentLayers(img v1.Image, dir string, records *verified.Records) v1.Image {
	return sparseImage{Image: img, dir: dir, records: records}
}

func (s sparseImage) mark(l v1.Layer) v1.Layer {
	d, err := l.Digest()
	if err != nil {
		return l
	}
	path := filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return &absentLayer{Layer: l, digest: d, dir: s.dir}
	}
	return &blobLayer{Layer: l, path: path, dir: s.dir, digest: d, records: s.records}
}

// blobLayer is a layer whose blob is in its layout: archives copy the file.
type blobLayer struct {
	v1.Layer
	path string
	// dir is the layout, digest the blob's name.
	dir    string
	digest v1.Hash
	// mediaType overrides the layer's own when set (WithMediaType).
	mediaType types.MediaType
	// records are those of the image that read the layout.
	records *verified.Records
}

// Records are the records of blobs found to match their digest.
func (b *blobLayer) Records() *verified.Records { return b.records }

// Source is the blob as the stored form (as the uncompressed one only
// when it is that), to be checked against its name: a layout is a
// directory anyone may have written (a blob found once to match, and not
// changed since, is not hashed again: see internal/verified).
func (b *blobLayer) Source(compressed bool) (string, v1.Hash, bool) {
	mt, err := b.MediaType()
	if !compressed && (err != nil || (mt != types.OCIUncompressedLayer && mt != types.DockerUncompressedLayer)) {
		return "", v1.Hash{}, false
	}
	return b.path, b.digest, true
}

// SourceRoot is the layout: the blob is opened within it, so that a blob
// that is a symbolic link cannot lead out of it.
func (b *blobLayer) SourceRoot() string { return b.dir }

func (b *blobLayer) MediaType() (types.MediaType, error) {
	if b.mediaType != "" {
		return b.mediaType, nil
	}
	return b.Layer.MediaType()
}

// Descriptor is the layer's descriptor in its manifest (annotations and
// URLs included), under the media type shown.
func (b *blobLayer) Descriptor() (*v1.Descriptor, error) {
	d, err := partial.Descriptor(b.Layer)
	if err != nil {
		return nil, err
	}
	c := *d
	if b.mediaType != "" {
		c.MediaType = b.mediaType
	}
	return &c, nil
}

// WithMediaType keeps the blob under another media type of the same
// compression.
func (b *blobLayer) WithMediaType(mt types.MediaType) v1.Layer {
	c := *b
	c.mediaType = mt
	return &c
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

// Compressed and Uncompressed open, as the existing library's do, and fail
// when read: a caller that opens a layer of a sparse image and never reads
// it (or reads only present ones) works.
func (a *absentLayer) Compressed() (io.ReadCloser, error)   { return failing{a.err()}, nil }
func (a *absentLayer) Uncompressed() (io.ReadCloser, error) { return failing{a.err()}, nil }

// failing is a reader whose every read fails with err.
type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }
func (f failing) Close() error             { return nil }

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
