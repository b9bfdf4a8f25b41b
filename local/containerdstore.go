package local

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// containerdStore is the containerd image store (Docker 24+ with the
// snapshotter, the default of Docker Desktop and of new installs): the
// image ID is the manifest digest, and a load of a docker archive that
// leaves a layer out is refused. A save sends an OCI layout whose manifest
// references the blobs the store holds for base and previous layers
// (learnt as manifests.go says) and carries only the other blobs, under a
// staging name; the user's name moves once the daemon reports all the
// image's content Available (see staged). Else every layer is sent.
type containerdStore struct{}

func (containerdStore) String() string { return "containerd image store" }

func (k containerdStore) loadPartial(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	if !s.supports(ctx, manifestsAPI) {
		// Availability cannot be asked before API 1.48: every layer.
		return k.loadAll(ctx, s, b, name)
	}
	return s.loadOCI(ctx, b, name)
}

func (containerdStore) loadAll(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	return s.loadDocker(ctx, b, name, false, nil)
}

// manifestsAPI is the API version from which ImageInspect reports whether
// each manifest's content is all in the store (Available).
const manifestsAPI = "1.48"

// errNotAvailable says a load that left out blobs gave an image whose
// content is not all in the store; the image is loaded again with them.
var errNotAvailable = errors.New("loaded image content is not all in the store")

// loadOCI loads b into a containerd image store as an OCI layout whose
// manifest references the descriptors the store already holds for layers
// of base and previous images, and carries only the other blobs. It proves
// the result: the daemon must report the manifest Available; otherwise the
// error matches errNotAvailable and nothing can be trusted of the image.
func (s *Store) loadOCI(ctx context.Context, b *built.Built, name string) (string, error) {
	family := imgutil.MediaTypesOf(b.ManifestType())
	descs := make([]v1.Descriptor, len(b.Layers))
	omit := make([]bool, len(b.Layers))
	var send []v1.Layer
	known := s.storedByDiffID(ctx, b.Layers)
	for i, l := range b.Layers {
		if _, ok := l.(*daemonLayer); ok {
			if d, ok := known[b.Config.RootFS.DiffIDs[i]]; ok {
				d.MediaType = sameBytesType(d.MediaType, family)
				descs[i], omit[i] = d, true
				continue
			}
		}
		send = append(send, l)
	}
	return s.staged(ctx, b.ConfigDigest(), name, func(staging string) (string, error) {
		entries, rawManifest, manifestDigest, err := s.partialOCI(ctx, b, descs, omit, send, func(_ v1.Hash, raw []byte) map[string]string {
			// The archive names the staging tag: the user's name moves only
			// once the image is proven complete. The manifest rides along
			// in the image record (see manifestAnnotation).
			return map[string]string{"io.containerd.image.name": staging, manifestAnnotation: string(raw)}
		})
		if err != nil {
			return "", err
		}
		if err := s.stream(ctx, archive.Reporting(entries, s.reporter("save"))); err != nil {
			return "", err
		}
		if err := s.checkAvailable(ctx, staging, manifestDigest); err != nil {
			return "", err
		}
		s.manifests.put(rawManifest)
		return manifestDigest.String(), nil
	})
}

// checkAvailable proves the image under name is manifestDigest with all
// its content in the store.
func (s *Store) checkAvailable(ctx context.Context, name string, manifestDigest v1.Hash) error {
	res, err := s.client.ImageInspect(ctx, name, client.ImageInspectWithManifests(true))
	if err != nil {
		return dropped(daemonError("inspecting the loaded image", err))
	}
	if res.ID != manifestDigest.String() {
		return fmt.Errorf("the loaded image is %s, not %s: %w", res.ID, manifestDigest, errNotAvailable)
	}
	for _, ms := range res.Manifests {
		if ms.ID == manifestDigest.String() && ms.Available {
			return nil
		}
	}
	return fmt.Errorf("image %s: %w", manifestDigest, errNotAvailable)
}
