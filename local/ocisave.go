package local

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// partialOCI returns the entries of an OCI-layout archive of b whose
// manifest describes layer i by descs[i] and leaves its blob out where
// omit[i], carrying the other layers (send, read from the daemon first
// where needed), the config and the manifest; the index names it with the
// annotations index gives for the manifest digest.
func (s *Store) partialOCI(ctx context.Context, b *built.Built, descs []v1.Descriptor, omit []bool, send []v1.Layer,
	index func(manifestDigest v1.Hash, rawManifest []byte) map[string]string) (entries []archive.Entry, rawManifest []byte, manifestDigest v1.Hash, err error) {
	if err := s.prefetch(ctx, send); err != nil {
		return nil, nil, v1.Hash{}, err
	}
	family := imgutil.MediaTypesOf(b.ManifestType())
	seen := map[v1.Hash]bool{}
	for i, l := range b.Layers {
		if omit[i] {
			continue
		}
		e, d, err := blobFor(l, family)
		if err != nil {
			return nil, nil, v1.Hash{}, fmt.Errorf("layer %d: %w", i, err)
		}
		descs[i] = d
		if !seen[d.Digest] {
			seen[d.Digest] = true
			entries = append(entries, e)
		}
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: b.ManifestType(), Layers: descs, Annotations: b.Annotations(),
		Config: v1.Descriptor{MediaType: b.ConfigType(), Size: int64(len(b.RawConfig)), Digest: b.ConfigDigest()},
	}
	return ociLayout(entries, m, b.RawConfig, index)
}

// ociLayout completes the entries of an OCI-layout archive holding blobs
// (its layer blobs, those not left out) with the config rawConfig, the
// manifest m and the index naming it with the annotations index gives;
// it returns them with the manifest's bytes and digest.
func ociLayout(blobs []archive.Entry, m v1.Manifest, rawConfig []byte,
	index func(manifestDigest v1.Hash, rawManifest []byte) map[string]string) ([]archive.Entry, []byte, v1.Hash, error) {
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, nil, v1.Hash{}, fmt.Errorf("encoding manifest: %w", err)
	}
	manifestDigest := sha256Of(rawManifest)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: m.MediaType, Size: int64(len(rawManifest)), Digest: manifestDigest,
		Annotations: index(manifestDigest, rawManifest),
	}}}
	rawIndex, err := json.Marshal(idx)
	if err != nil {
		return nil, nil, v1.Hash{}, fmt.Errorf("encoding index: %w", err)
	}
	entries := append([]archive.Entry{{Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}}, blobs...)
	entries = append(entries,
		archive.Entry{Name: blobPath(m.Config.Digest), Data: rawConfig},
		archive.Entry{Name: blobPath(manifestDigest), Data: rawManifest},
		archive.Entry{Name: "index.json", Data: rawIndex},
	)
	for i := range entries {
		if entries[i].Open == nil && entries[i].Path == "" {
			entries[i].Size = int64(len(entries[i].Data))
		}
	}
	return entries, rawManifest, manifestDigest, nil
}

// blobFor returns the archive entry and descriptor of a layer to send: a
// layer that knows its uncompressed size goes as an uncompressed blob
// (digest = diffID: no CPU spent compressing); another (from a registry or
// a layout) as the blob it is stored as, streamed once.
func blobFor(l v1.Layer, family imgutil.MediaTypes) (archive.Entry, v1.Descriptor, error) {
	u, ok := l.(interface{ UncompressedSize() (int64, error) })
	if !ok {
		d, err := partial.Descriptor(l)
		if err != nil {
			return archive.Entry{}, v1.Descriptor{}, fmt.Errorf("describing layer: %w", err)
		}
		desc := v1.Descriptor{MediaType: sameBytesType(d.MediaType, family), Size: d.Size, Digest: d.Digest}
		return archive.Entry{Name: blobPath(d.Digest), Size: d.Size, Open: l.Compressed}, desc, nil
	}
	size, err := u.UncompressedSize()
	if err != nil {
		return archive.Entry{}, v1.Descriptor{}, err
	}
	diffID, err := l.DiffID()
	if err != nil {
		return archive.Entry{}, v1.Descriptor{}, err
	}
	mt := types.OCIUncompressedLayer
	if family == imgutil.DockerTypes {
		mt = types.DockerUncompressedLayer
	}
	return archive.Entry{Name: blobPath(diffID), Size: size, Open: l.Uncompressed},
		v1.Descriptor{MediaType: mt, Size: size, Digest: diffID}, nil
}

// sameBytesType renames a layer media type into family (OCI or Docker)
// when the bytes mean the same in both; others are kept as stored.
func sameBytesType(mt types.MediaType, family imgutil.MediaTypes) types.MediaType {
	pairs := map[types.MediaType][2]types.MediaType{
		types.DockerLayer: {types.DockerLayer, types.OCILayer}, types.OCILayer: {types.DockerLayer, types.OCILayer},
		types.DockerUncompressedLayer: {types.DockerUncompressedLayer, types.OCIUncompressedLayer},
		types.OCIUncompressedLayer:    {types.DockerUncompressedLayer, types.OCIUncompressedLayer},
	}
	p, ok := pairs[mt]
	switch {
	case !ok:
		return mt
	case family == imgutil.DockerTypes:
		return p[0]
	default:
		return p[1]
	}
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
