package local

import (
	"context"
	"errors"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// podmanRefusal reports whether a load failed as Podman fails a docker
// archive with a layer left out.
func podmanRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "layer tarfiles are missing")
}

// refusedAsPartial reports whether a load failed because the archive left
// out a layer the daemon lacks, in the words of each daemon: the classic
// store cannot open the missing layer.tar in its import dir, the
// containerd store cannot resolve it, Podman says tarfiles are missing.
// Only then is it worth sending every layer; any other failure is the
// answer.
func refusedAsPartial(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return podmanRefusal(err) ||
		(strings.Contains(msg, "docker-import-") && strings.Contains(msg, "no such file or directory")) ||
		(strings.Contains(msg, "failed to resolve layers") && strings.Contains(msg, "not found")) ||
		// Podman, for an OCI archive leaving out a blob its store lacks.
		(strings.Contains(msg, "reading blob") && strings.Contains(msg, "no such file"))
}

// worthSendingAll reports whether a partial load failed in a way that
// sending every layer can mend: the daemon refused the archive as partial,
// or took it but lacks some of its content (errNotAvailable). A daemon
// error of another kind, or a cancel, is the answer.
func worthSendingAll(ctx context.Context, err error) bool {
	return retryable(ctx, err) && (refusedAsPartial(err) || errors.Is(err, errNotAvailable))
}

// daemonHost is the host the caller's client talks to, when it says.
func (s *Store) daemonHost() string { return hostOf(s.client.c) }

// hostOf is the host a client talks to, when it says.
func hostOf(c DockerClient) string {
	if h, ok := c.(interface{ DaemonHost() string }); ok {
		return h.DaemonHost()
	}
	return ""
}

// podmanAnswer reports whether an image inspected is described as only
// Podman's Docker-compatible API describes images: it names every image
// fully ("docker.io/library/x:1", where dockerd says "x:1"), and gives its
// container config the first 11 hex digits of the image ID as hostname.
// Knowing it from the inspect a save makes anyway spares the first save of
// each process a load Podman would refuse (a docker archive that leaves a
// layer out), which would carry the new layers twice.
func podmanAnswer(id string, repoTags []string, containerConfig *struct{ Hostname string }) bool {
	for _, t := range repoTags {
		if strings.HasPrefix(t, "docker.io/") {
			return true
		}
	}
	hex := strings.TrimPrefix(id, "sha256:")
	return containerConfig != nil && len(containerConfig.Hostname) == 11 && len(hex) == 64 &&
		strings.HasPrefix(hex, containerConfig.Hostname)
}

// podmanService is Podman's Docker-compatible service: the image ID is the
// config digest, and it refuses a docker archive that leaves a layer out,
// but takes an OCI archive whose missing blobs its store holds by diffID.
// A Store learns it from the images it inspects (see podmanAnswer), else
// from a load Podman refuses (see classicStore); asking (ServerVersion,
// Info) costs more than a second on Podman.
type podmanService struct{}

func (podmanService) String() string { return "Podman" }

func (podmanService) loadPartial(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	return s.loadPodman(ctx, b, name)
}

func (podmanService) loadAll(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	return s.loadDocker(ctx, b, name, false, nil)
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
	tag, err := archive.Tag(name)
	if err != nil {
		return "", err
	}
	entries, _, _, err := s.partialOCI(ctx, b, descs, omit, send, func(v1.Hash, []byte) map[string]string {
		return map[string]string{"org.opencontainers.image.ref.name": tag}
	})
	if err != nil {
		return "", err
	}
	return s.loadAndCheck(ctx, entries, b, tag, true)
}
