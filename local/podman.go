package local

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// fetchPodman asks the daemon's version whether it is Podman's
// Docker-compatible service.
func fetchPodman(ctx context.Context, c DockerClient) (bool, error) {
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return false, daemonError("asking the daemon its version", err)
	}
	for _, comp := range v.Components {
		if strings.Contains(strings.ToLower(comp.Name), "podman") {
			return true, nil
		}
	}
	return false, nil
}

// podman reports whether the daemon is Podman. Only daemons of an API older
// than 1.48 are asked (Podman speaks 1.41; current dockerds are known by
// their API version without a call).
func (s *Store) podman(ctx context.Context) (bool, error) {
	if s.supports(ctx, manifestsAPI) {
		return false, nil
	}
	return s.isPodman.get(ctx, func(ctx context.Context) (bool, error) { return fetchPodman(ctx, s.client) })
}

// loadPodman loads b into Podman as an OCI archive that leaves out the
// layers of images read from it (Podman refuses a docker archive that
// leaves a layer out, but takes an OCI one whose missing blobs its store
// holds by diffID), carrying only the other blobs. A load whose left-out
// blob the store lacks fails, naming nothing; the caller then sends every
// layer. Podman's image ID is the config digest.
func (s *Store) loadPodman(ctx context.Context, b *built.Built, name string) (string, error) {
	family := imgutil.MediaTypesOf(b.ManifestType())
	uncompressed := types.OCIUncompressedLayer
	if family == imgutil.DockerTypes {
		uncompressed = types.DockerUncompressedLayer
	}
	descs := make([]v1.Descriptor, len(b.Layers))
	omit := make([]bool, len(b.Layers))
	var send []v1.Layer
	for i, l := range b.Layers {
		if _, ok := l.(*daemonLayer); ok {
			diffID := b.Config.RootFS.DiffIDs[i]
			var size int64
			if lf, held := s.fetcher.file(diffID); held {
				size = lf.size
			}
			descs[i], omit[i] = v1.Descriptor{MediaType: uncompressed, Digest: diffID, Size: size}, true
			continue
		}
		send = append(send, l)
	}
	if err := s.prefetch(ctx, send); err != nil {
		return "", err
	}
	entries := []archive.Entry{{Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}}
	seen := map[v1.Hash]bool{}
	for i, l := range b.Layers {
		if omit[i] {
			continue
		}
		e, d, err := blobFor(l, family)
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i, err)
		}
		descs[i] = d
		if !seen[d.Digest] {
			seen[d.Digest] = true
			entries = append(entries, e)
		}
	}
	cfgDigest := b.ConfigDigest()
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: b.ManifestType(), Layers: descs, Annotations: b.Annotations(),
		Config: v1.Descriptor{MediaType: b.ConfigType(), Size: int64(len(b.RawConfig)), Digest: cfgDigest},
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding manifest: %w", err)
	}
	manifestDigest := built.SHA256(rawManifest)
	tag, err := archive.Tag(name)
	if err != nil {
		return "", err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: b.ManifestType(), Size: int64(len(rawManifest)), Digest: manifestDigest,
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}}}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		return "", fmt.Errorf("encoding index: %w", err)
	}
	entries = append(entries,
		archive.Entry{Name: blobPath(cfgDigest), Data: b.RawConfig},
		archive.Entry{Name: blobPath(manifestDigest), Data: rawManifest},
		archive.Entry{Name: "index.json", Data: rawIndex},
	)
	for i := range entries {
		if entries[i].Open == nil {
			entries[i].Size = int64(len(entries[i].Data))
		}
	}
	if err := s.stream(ctx, archive.Reporting(entries, s.reporter("save"))); err != nil {
		return "", err
	}
	res, err := s.inspect(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("finding the loaded image: %w", err)
	}
	var diffIDs []string
	for _, d := range b.Config.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	if !slices.Equal(res.RootFS.Layers, diffIDs) || res.ID != cfgDigest.String() {
		return "", fmt.Errorf("after the load %s is image %s with layers %v, not %s with %v", tag, res.ID, res.RootFS.Layers, cfgDigest, diffIDs)
	}
	return res.ID, nil
}
