package local

import (
	"bytes"
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
)

// prefetch reads from the daemon every daemon layer among layers that is
// not held yet: one ImageSave per source image.
func (s *Store) prefetch(ctx context.Context, layers []v1.Layer) error {
	return s.fetchLayers(ctx, layers, false)
}

// fetchLayers is prefetch; with lowOnly (a read of one layer, as GetLayer
// makes) the daemon may be asked for only the layers up to it (see
// probeImage). Other reads (a save, a push) soon want every layer of the
// image: one full stream serves them all.
func (s *Store) fetchLayers(ctx context.Context, layers []v1.Layer, lowOnly bool) error {
	byImage := map[*daemonImage][]v1.Hash{}
	for _, l := range layers {
		dl, ok := l.(*daemonLayer)
		if !ok {
			continue
		}
		if _, held := s.fetcher.file(dl.diffID); !held {
			byImage[dl.image] = append(byImage[dl.image], dl.diffID)
		}
	}
	for img, ids := range byImage {
		if err := s.fetcher.fetch(ctx, img.id, img.cfg.RootFS.DiffIDs, s.hints(ctx, img, lowOnly), ids...); err != nil {
			return err
		}
	}
	return nil
}

// hints says how to read img's layers: what is known of how the store
// holds it, and whether a probe image may serve (lowOnly, see
// fetchLayers).
func (s *Store) hints(ctx context.Context, img *daemonImage, lowOnly bool) hints {
	h := hints{stored: s.storedDiffIDs(ctx, img), learnt: s.manifests.put, sources: img.cfg.OS == "windows"}
	containerd, err := s.usesContainerdStore(ctx, []*daemonImage{img})
	if err == nil && containerd && lowOnly && h.stored == nil && img.inspect.Size >= s.probeMinSize && s.supports(ctx, manifestsAPI) {
		// One layer wanted of a big image whose stored manifest is not
		// known: it is read out of the stream first (nothing written), so
		// that a probe serves and no other blob is spooled to be told
		// apart. Failing that, the stream is read as it comes.
		if _, serr := s.storedLayers(ctx, img, false); serr == nil {
			h.stored = s.storedDiffIDs(ctx, img)
		}
	}
	switch {
	case err != nil:
	case lowOnly && img.inspect.Size >= s.probeMinSize && (!containerd || (h.stored != nil && s.supports(ctx, manifestsAPI))):
		h.probe = func(ctx context.Context, n int) (string, string, func(), error) {
			return s.probeImage(ctx, img, n)
		}
	case containerd && h.stored == nil:
		// Its manifest, met in the stream, names the blobs after it
		// (and is kept for the next time).
		h.manifest, _ = s.manifestDigest(ctx, img)
	}
	return h
}

// storedConfig returns the config the daemon holds for img, byte for byte,
// read from its archive along with every layer (see daemonImage.AsStored).
func (s *Store) storedConfig(ctx context.Context, img *daemonImage) ([]byte, error) {
	if raw, ok := s.fetcher.config(img.id); ok {
		return raw, nil
	}
	digest, err := v1.NewHash(img.id)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.id, err)
	}
	if img.inspect.Descriptor != nil {
		// The containerd store: the ID is the manifest's digest; the
		// config's is in the manifest.
		if _, err := s.storedLayers(ctx, img, false); err != nil {
			return nil, err
		}
		md, err := s.manifestDigest(ctx, img)
		if err != nil {
			return nil, err
		}
		raw, ok := s.manifests.get(md)
		if !ok {
			return nil, fmt.Errorf("image %s: manifest %s: %w", img.id, md, errNoStoredManifest)
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parsing manifest %s: %w", md, err)
		}
		digest = m.Config.Digest
	}
	h := s.hints(ctx, img, false)
	h.config = digest.Hex
	if err := s.fetcher.fetch(ctx, img.id, img.cfg.RootFS.DiffIDs, h, img.cfg.RootFS.DiffIDs...); err != nil {
		return nil, err
	}
	raw, ok := s.fetcher.config(img.id)
	if !ok {
		return nil, fmt.Errorf("the archive of image %s lacks its config %s: %w", img.id, digest, imgutil.ErrNotFound)
	}
	return raw, nil
}
