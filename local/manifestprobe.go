package local

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/archive"
)

// storedManifestType is the media type under which a manifest probe lists
// the stored manifests it asks for: no layer, config or manifest type, so
// the store neither unpacks nor walks them, and exports them as blobs.
const storedManifestType types.MediaType = "application/vnd.imgbridge.imgutil.stored-manifest"

// emptyJSON is the OCI empty descriptor's content, the probe's config.
var emptyJSON = []byte("{}")

// learnManifests makes the manifests the containerd image store holds imgs
// by known (in the manifest cache), for those not known yet, all with one
// manifest probe: a tiny image whose "layers" are those manifests, loaded
// without sending them (the store holds them), exported (its archive
// carries them as blobs, and nothing of the images' layers), then removed.
// That costs three small requests where reading an image's archive up to
// its manifest, then to its end (the caller's client may have one
// connection, which must not be left with a half-read answer), costs the
// whole image.
func (s *Store) learnManifests(ctx context.Context, imgs []*daemonImage) error {
	var want []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, img := range imgs {
		if img.inspect.Descriptor == nil {
			continue
		}
		d, err := s.manifestDescriptor(ctx, img)
		if err != nil {
			return err
		}
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		if _, ok := s.manifests.get(d.Digest); ok {
			continue
		}
		if d.Size <= 0 || d.Size > maxManifestSize {
			return fmt.Errorf("manifest %s has size %d: %w", d.Digest, d.Size, errNoStoredManifest)
		}
		want = append(want, v1.Descriptor{MediaType: storedManifestType, Digest: d.Digest, Size: d.Size})
	}
	if len(want) == 0 {
		return nil
	}
	if until := s.probeRefusedUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return fmt.Errorf("the daemon refused a manifest probe lately: %w", errNoStoredManifest)
	}
	var err error
	for attempt := 1; attempt <= maxProbes; attempt++ {
		// Each under a new name: the one before may have been removed
		// under it (a prune, another build's cleanup), or its load
		// dropped, or the connection failed.
		if err = s.manifestProbe(ctx, want); err == nil || ctx.Err() != nil {
			return err
		}
		if probeRefused(err) && attempt >= 2 {
			// The daemon answered twice that it will not: not asked again
			// for a while (every image read from it meanwhile is read
			// whole).
			s.probeRefusedUntil.Store(time.Now().Add(probeRefusalTerm).UnixNano())
			return err
		}
	}
	return err
}

// maxProbes bounds the manifest probes made to learn one set of manifests.
const maxProbes = 3

// probeRefusalTerm is how long a daemon that refused a manifest probe is
// not asked for another.
const probeRefusalTerm = 10 * time.Minute

// errProbeGone says a manifest probe's image was removed before it was
// exported (a prune, another build's cleanup).
var errProbeGone = errors.New("the manifest probe was removed under it")

// probeRefused reports whether a failed manifest probe was refused in the
// daemon's words: not a daemon out of reach, nor the probe's image
// removed under it, nor its load's lease removed (a prune) or its
// connection cut (see cutLoad). A manifest the store lacks (its content
// collected) is a refusal too: it would fail the same way every time.
func probeRefused(err error) bool {
	return !errors.Is(err, ErrDaemonUnreachable) && !client.IsErrConnectionFailed(err) &&
		!errors.Is(err, errLoadCut) && !errors.Is(err, errProbeGone) && !leaseLost(err)
}

// manifestProbe loads, exports and removes a manifest probe of the stored
// manifests want (see learnManifests).
func (s *Store) manifestProbe(ctx context.Context, want []v1.Descriptor) error {
	tag := ownedTag()
	name := "docker.io/" + probeRepo + "/manifests:" + tag
	entries, err := manifestProbeEntries(name, want)
	if err != nil {
		return err
	}
	s.ledger.made(tag)
	defer func() {
		// Removed even when the caller gave up meanwhile.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, err := s.client.ImageRemove(rctx, name, client.ImageRemoveOptions{Force: true})
		s.forget(tag, err)
	}()
	if err := s.stream(ctx, entries); err != nil {
		return fmt.Errorf("loading a manifest probe: %w", err)
	}
	rc, err := s.client.ImageSave(ctx, []string{name})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			err = fmt.Errorf("%w: %w", errProbeGone, err)
		}
		return daemonError("saving the manifest probe", err)
	}
	defer rc.Close()
	wanted := map[string]v1.Hash{}
	for _, d := range want {
		wanted[blobPath(d.Digest)] = d.Digest
	}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the manifest probe's archive: %w", err)
		}
		d, ok := wanted[hdr.Name]
		if !ok || hdr.Size > maxManifestSize {
			continue
		}
		raw, err := readBlob(tr, d)
		if err != nil {
			return fmt.Errorf("manifest probe: %w: %w", err, errNoStoredManifest)
		}
		s.manifests.put(raw)
		delete(wanted, hdr.Name)
	}
	if len(wanted) > 0 {
		return fmt.Errorf("the manifest probe's archive lacks %d of the manifests: %w", len(wanted), errNoStoredManifest)
	}
	return nil
}

// manifestProbeEntries is the OCI-layout archive of a manifest probe named
// name whose layers are the descriptors stored (left out of the archive).
func manifestProbeEntries(name string, stored []v1.Descriptor) ([]archive.Entry, error) {
	cfg := v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Size: int64(len(emptyJSON)), Digest: sha256Of(emptyJSON)}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: stored}
	entries, _, _, err := ociLayout(nil, m, emptyJSON, func(v1.Hash, []byte) map[string]string {
		return map[string]string{"io.containerd.image.name": name}
	})
	return entries, err
}
