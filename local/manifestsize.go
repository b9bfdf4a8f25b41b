package local

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/built"
)

// ManifestSize returns the size of the image's manifest, without reading
// any layer from the daemon (the lifecycle asks it of every image it
// exports, for its report). Where the daemon keeps a manifest for the
// image as it is (the containerd image store: an image saved and not
// edited since, or opened and not edited), it is that manifest's size.
// Elsewhere a daemon keeps none: it is the size of a manifest describing
// the layers uncompressed by their diffIDs, with the sizes known without
// reading the daemon (0 for a daemon layer not read), as the existing
// library also answers without reading layers.
func (i *Image) ManifestSize() (int64, error) {
	b, err := built.Of(i.CNBImageCore)
	if err != nil {
		return 0, err
	}
	i.mu.Lock()
	lastID, savedConfig := i.lastID, i.savedConfig
	i.mu.Unlock()
	if d, ok := i.UnderlyingImage().(*daemonImage); ok {
		// Opened and not edited: the manifest the store holds, if any.
		if desc := d.inspect.Descriptor; desc != nil && desc.Digest.String() == d.id && desc.Size > 0 {
			return desc.Size, nil
		}
	} else if lastID != "" && savedConfig == b.ConfigDigest() {
		// Saved and not edited since: on the containerd store the ID is
		// the digest of the manifest the save loaded, which it kept.
		if h, err := v1.NewHash(lastID); err == nil {
			if raw, ok := i.store.manifests.get(h); ok {
				return int64(len(raw)), nil
			}
		}
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: b.ManifestType(), Annotations: b.Annotations(),
		Config: v1.Descriptor{MediaType: b.ConfigType(), Size: int64(len(b.RawConfig)), Digest: b.ConfigDigest()},
	}
	for j, l := range b.Layers {
		mt, err := l.MediaType()
		if err != nil {
			return 0, fmt.Errorf("layer %d: %w", j, err)
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Digest: b.Config.RootFS.DiffIDs[j], Size: i.store.sizeWithoutReading(l)})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("encoding manifest: %w", err)
	}
	return int64(len(raw)), nil
}

// sizeWithoutReading is the uncompressed size of l when known without
// reading it from the daemon, else 0.
func (s *Store) sizeWithoutReading(l v1.Layer) int64 {
	if dl, ok := l.(*daemonLayer); ok {
		lf, _ := s.fetcher.file(dl.diffID)
		return lf.size
	}
	if u, ok := l.(interface{ UncompressedSize() (int64, error) }); ok {
		if n, err := u.UncompressedSize(); err == nil {
			return n
		}
	}
	return 0
}
