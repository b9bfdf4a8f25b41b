package layer

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AsBlob is how a layer goes into a store that holds blobs (an OCI archive
// for a daemon, a containerd content store): a layer that knows its
// uncompressed size goes as an uncompressed blob (its digest is its
// diffID: no CPU spent compressing); another (from a registry or a layout)
// as the blob it is stored as, streamed once. docker says the manifest is
// a Docker one (media types named the Docker way), else OCI.
func AsBlob(l v1.Layer, docker bool) (v1.Descriptor, func() (io.ReadCloser, error), error) {
	u, ok := l.(interface{ UncompressedSize() (int64, error) })
	if !ok {
		d, err := partial.Descriptor(l)
		if err != nil {
			return v1.Descriptor{}, nil, fmt.Errorf("describing layer: %w", err)
		}
		return v1.Descriptor{MediaType: SameBytesType(d.MediaType, docker), Size: d.Size, Digest: d.Digest}, l.Compressed, nil
	}
	size, err := u.UncompressedSize()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	diffID, err := l.DiffID()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	mt := types.OCIUncompressedLayer
	if docker {
		mt = types.DockerUncompressedLayer
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: diffID}, l.Uncompressed, nil
}

// SameBytesType names a layer media type the Docker way (docker) or the
// OCI way when the bytes mean the same in both; others are kept as stored.
func SameBytesType(mt types.MediaType, docker bool) types.MediaType {
	pairs := map[types.MediaType][2]types.MediaType{
		types.DockerLayer: {types.DockerLayer, types.OCILayer}, types.OCILayer: {types.DockerLayer, types.OCILayer},
		types.DockerUncompressedLayer: {types.DockerUncompressedLayer, types.OCIUncompressedLayer},
		types.OCIUncompressedLayer:    {types.DockerUncompressedLayer, types.OCIUncompressedLayer},
	}
	p, ok := pairs[mt]
	switch {
	case !ok:
		return mt
	case docker:
		return p[0]
	default:
		return p[1]
	}
}
