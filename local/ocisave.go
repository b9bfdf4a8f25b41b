package local

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/layer"
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

// blobFor returns the archive entry and descriptor of a layer to send
// (see layer.AsBlob).
func blobFor(l v1.Layer, family imgutil.MediaTypes) (archive.Entry, v1.Descriptor, error) {
	d, open, err := layer.AsBlob(l, family == imgutil.DockerTypes)
	if err != nil {
		return archive.Entry{}, v1.Descriptor{}, err
	}
	return archive.Entry{Name: blobPath(d.Digest), Size: d.Size, Open: open}, d, nil
}

// sameBytesType names mt as family does (see layer.SameBytesType).
func sameBytesType(mt types.MediaType, family imgutil.MediaTypes) types.MediaType {
	return layer.SameBytesType(mt, family == imgutil.DockerTypes)
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
