package local

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// ErrIndexNotSupported is matched when a multi-platform image (an index) is
// saved into a daemon whose image store holds one platform per image: the
// classic graphdriver store, Podman's service, a daemon older than API
// 1.48. It matches errors.ErrUnsupported; the error names the platforms,
// one of which may be saved as an image of its own.
var ErrIndexNotSupported = fmt.Errorf("the daemon's image store holds no multi-platform images: %w", errors.ErrUnsupported)

// SaveIndex saves idx, a multi-platform image, into the daemon under name
// and each of additionalNames, as one image whose ID is the index digest:
// every platform's manifest, config and layers. Only a daemon with the
// containerd image store (API 1.48 or later) holds one; any other gives an
// error matching ErrIndexNotSupported, and nothing is loaded.
//
// The blobs of the platforms the image already under name holds complete
// (as the daemon says, per manifest) are not sent: a rebuild of one
// platform sends that platform's new blobs. The index's children must be
// images (a nested index is refused, imgutil.ErrInvalidArgument). As
// Save, the load goes under a staging name, and name moves only once the
// daemon reports every platform's content in its store.
func (s *Store) SaveIndex(ctx context.Context, idx v1.ImageIndex, name string, additionalNames ...string) (string, error) {
	for _, n := range append([]string{name}, additionalNames...) {
		if _, err := archive.Tag(n); err != nil {
			return "", err
		}
	}
	rawIndex, err := idx.RawManifest()
	if err != nil {
		return "", fmt.Errorf("reading the index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("reading the index: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return "", fmt.Errorf("reading the index: %w", err)
	}
	indexDigest := sha256Of(rawIndex)
	// The platforms (an attestation manifest, as buildx adds, says
	// unknown/unknown: it is stored, not a platform).
	var platforms []string
	var ociPlatforms []ocispec.Platform
	unplatformed := 0
	for _, d := range im.Manifests {
		switch {
		case d.Platform == nil:
			unplatformed++
		case d.Platform.OS != "unknown":
			platforms = append(platforms, d.Platform.String())
			ociPlatforms = append(ociPlatforms, ocispec.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture,
				Variant: d.Platform.Variant, OSVersion: d.Platform.OSVersion})
		}
	}
	containerd, err := s.usesContainerdStore(ctx, nil)
	if err != nil {
		return "", err
	}
	if !containerd || !s.supports(ctx, manifestsAPI) {
		return "", fmt.Errorf("saving %s (%s): %w", name, strings.Join(platforms, ", "), ErrIndexNotSupported)
	}

	// Every platform is loaded, not only the daemon's: named in the
	// request from API 1.52 (before it, one platform at most; without one
	// the store takes every platform the archive holds).
	var opts []client.ImageLoadOption
	if unplatformed == 0 && (len(ociPlatforms) == 1 || len(ociPlatforms) > 1 && s.supports(ctx, multiPlatformLoadAPI)) {
		opts = append(opts, client.ImageLoadWithPlatforms(ociPlatforms...))
	}
	// Read once, whatever the loads below.
	children, err := built.Children(idx)
	if err != nil {
		return "", err
	}
	held := s.heldBlobs(ctx, name)
	var id string
	odd := 0
	for attempt := 1; ; attempt++ {
		id, err = s.staged(ctx, indexDigest, name, func(staging string) (string, error) {
			return s.loadIndex(ctx, children, mt, rawIndex, indexDigest, held, staging, opts)
		})
		switch {
		case err == nil:
		case errors.Is(err, errNotAvailable) && len(held) > 0:
			// What the store held for the image under the name is gone:
			// everything goes with the next load.
			held = nil
			continue
		case errors.Is(err, ErrLoadDropped) && ctx.Err() == nil && attempt < maxDropped && !tooManyOdd(err, &odd):
			if strings.Contains(err.Error(), "content digest") {
				held = nil
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(dropWait(attempt)):
			}
			continue
		default:
			return "", err
		}
		break
	}
	var se imgutil.SaveError
	for _, n := range additionalNames {
		if err := s.tag(ctx, id, n); err != nil {
			se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
	}
	if len(se.Errors) > 0 {
		return id, se
	}
	return id, nil
}

// loadIndex streams an OCI archive of the index idx (its entries leaving
// out the blobs held) named staging into the daemon, and proves every
// platform's content available; it returns the index digest.
func (s *Store) loadIndex(ctx context.Context, children []built.Child, mt types.MediaType, rawIndex []byte, indexDigest v1.Hash,
	held map[v1.Hash]bool, staging string, opts []client.ImageLoadOption) (string, error) {
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	entries := []archive.Entry{{Name: "oci-layout", Data: layout, Size: int64(len(layout))}}
	seen := map[v1.Hash]bool{}
	add := func(e archive.Entry, d v1.Hash) {
		if held[d] || seen[d] {
			return
		}
		seen[d] = true
		e.Name = blobPath(d)
		if e.Open == nil {
			e.Size = int64(len(e.Data))
		}
		entries = append(entries, e)
	}
	var platforms []v1.Hash
	for _, c := range children {
		d := c.Descriptor.Digest
		add(archive.Entry{Data: c.RawManifest}, d)
		add(archive.Entry{Data: c.RawConfig}, c.Manifest.Config.Digest)
		for j, l := range c.Layers {
			add(archive.Entry{Open: l.Compressed, Size: c.Manifest.Layers[j].Size}, c.Manifest.Layers[j].Digest)
		}
		s.manifests.put(c.RawManifest)
		if c.Platform() {
			platforms = append(platforms, d)
		}
	}
	add(archive.Entry{Data: rawIndex}, indexDigest)
	top := indexJSON(mt, indexDigest, rawIndex, staging)
	entries = append(entries, archive.Entry{Name: "index.json", Data: top, Size: int64(len(top))})
	if err := s.stream(ctx, archive.Reporting(entries, s.reporter("save")), opts...); err != nil {
		return "", err
	}
	if err := s.checkIndexAvailable(ctx, staging, indexDigest, platforms); err != nil {
		return "", err
	}
	s.manifests.put(rawIndex)
	return indexDigest.String(), nil
}

// multiPlatformLoadAPI is the first API version whose image load takes
// more than one platform.
const multiPlatformLoadAPI = "1.52"

// indexJSON is the index.json of an archive holding the index rawIndex,
// named staging; the index rides along in the image record (as a
// manifest does, see manifestAnnotation), so that a later save of the
// name learns what the store holds without reading it.
func indexJSON(mt types.MediaType, digest v1.Hash, rawIndex []byte, staging string) []byte {
	top := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: mt, Size: int64(len(rawIndex)), Digest: digest,
		Annotations: map[string]string{"io.containerd.image.name": staging, manifestAnnotation: string(rawIndex)},
	}}}
	raw, _ := json.Marshal(top)
	return raw
}

// heldBlobs returns the blobs the store holds for the multi-platform image
// under name, if we saved it: of each platform whose content the daemon
// reports complete, its manifest, config and layers (the manifests from
// the cache, the index from the image record). Nothing when unknown.
func (s *Store) heldBlobs(ctx context.Context, name string) map[v1.Hash]bool {
	held := map[v1.Hash]bool{}
	res, err := s.client.ImageInspect(ctx, name, client.ImageInspectWithManifests(true))
	if err != nil || res.Descriptor == nil {
		return held
	}
	raw := []byte(res.Descriptor.Annotations[manifestAnnotation])
	if len(raw) == 0 || sha256Of(raw).String() != res.Descriptor.Digest.String() {
		return held
	}
	var im v1.IndexManifest
	if json.Unmarshal(raw, &im) != nil {
		return held
	}
	available := map[string]bool{}
	for _, ms := range res.Manifests {
		if ms.Available {
			available[ms.ID] = true
		}
	}
	for _, d := range im.Manifests {
		if !available[d.Digest.String()] {
			continue
		}
		rawManifest, ok := s.manifests.get(d.Digest)
		if !ok {
			continue
		}
		var m v1.Manifest
		if json.Unmarshal(rawManifest, &m) != nil {
			continue
		}
		held[d.Digest], held[m.Config.Digest] = true, true
		for _, l := range m.Layers {
			held[l.Digest] = true
		}
	}
	return held
}

// checkIndexAvailable proves the image under name is the index digest
// with every one of its manifests' content in the store.
func (s *Store) checkIndexAvailable(ctx context.Context, name string, digest v1.Hash, children []v1.Hash) error {
	res, err := s.client.ImageInspect(ctx, name, client.ImageInspectWithManifests(true))
	if err != nil {
		return dropped(daemonError("inspecting the loaded image", err))
	}
	if res.ID != digest.String() {
		return fmt.Errorf("the loaded image is %s, not the index %s: %w", res.ID, digest, errNotAvailable)
	}
	available := map[string]bool{}
	for _, ms := range res.Manifests {
		available[ms.ID] = ms.Available
	}
	for _, c := range children {
		if !available[c.String()] {
			return fmt.Errorf("index %s: manifest %s: %w", digest, c, errNotAvailable)
		}
	}
	return nil
}

// PlatformManifest is one platform of an image in the daemon.
type PlatformManifest struct {
	Platform imgutil.Platform
	// Digest is the platform's manifest digest: what a registry names it
	// by. Zero where the daemon keeps no manifest (a classic store or
	// Podman, for an image not pulled).
	Digest v1.Hash
	// Available says the platform's content (config, layers) is all in
	// the daemon's store: a multi-platform image pulled for one platform
	// lists the others too, not available.
	Available bool
}

// Platforms returns the platforms of the image name in the daemon, each
// with its manifest digest (lifecycle#1457: the Docker API has them from
// 1.48, in the containerd image store). A store of one platform per image
// (classic, Podman, older daemons) gives the image's own platform, without
// a digest. Attestation manifests are not platforms: they are left out.
func (s *Store) Platforms(ctx context.Context, name string) ([]PlatformManifest, error) {
	var opts []client.ImageInspectOption
	if s.supports(ctx, manifestsAPI) {
		opts = append(opts, client.ImageInspectWithManifests(true))
	}
	res, err := s.client.ImageInspect(ctx, name, opts...)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s: %w", name, imgutil.ErrNotFound)
	}
	if err != nil {
		return nil, daemonError("inspecting image "+name, err)
	}
	var out []PlatformManifest
	for _, ms := range res.Manifests {
		if ms.ImageData == nil {
			continue
		}
		p := ms.ImageData.Platform
		d, err := v1.NewHash(ms.ID)
		if err != nil {
			continue
		}
		out = append(out, PlatformManifest{
			Platform: imgutil.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion},
			Digest:   d, Available: ms.Available,
		})
	}
	if len(out) == 0 && !s.supports(ctx, manifestsAPI) && res.Descriptor == nil {
		// Before API 1.48 a containerd store tells its platforms only in
		// the content it exports.
		if containerd, err := s.usesContainerdStore(ctx, nil); err == nil && containerd {
			exported, err := s.exportedPlatforms(ctx, name)
			if err != nil {
				return nil, err
			}
			out = exported
		}
	}
	if len(out) == 0 {
		out = append(out, PlatformManifest{Platform: imgutil.Platform{OS: res.Os, Architecture: res.Architecture, Variant: res.Variant, OSVersion: res.OsVersion}, Available: true})
		if res.Descriptor != nil && types.MediaType(res.Descriptor.MediaType).IsImage() {
			out[0].Digest, _ = v1.NewHash(res.Descriptor.Digest.String())
		}
	}
	return out, nil
}

// exportedPlatforms reads the platforms of the image name out of its
// export (a containerd store's OCI archive: index.json names the image's
// index, whose manifests name their platforms). The whole export is read,
// the small blobs kept until the end: the archive's order is the
// daemon's. Every platform listed is taken as available: only what the
// store holds is exported.
func (s *Store) exportedPlatforms(ctx context.Context, name string) ([]PlatformManifest, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := s.client.ImageSave(ctx, []string{name})
	if err != nil {
		return nil, daemonError("saving image "+name, err)
	}
	defer rc.Close()
	small := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading image %s archive: %w", name, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size > maxManifestSize {
			continue
		}
		raw, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading image %s archive: %w", name, err)
		}
		small[hdr.Name] = raw
	}
	blob := func(d v1.Hash) ([]byte, bool) {
		raw, ok := small[blobPath(d)]
		return raw, ok && sha256Of(raw) == d
	}
	var top v1.IndexManifest
	if err := json.Unmarshal(small["index.json"], &top); err != nil {
		return nil, fmt.Errorf("image %s archive: index.json: %w", name, err)
	}
	var out []PlatformManifest
	for _, d := range top.Manifests {
		add := func(d v1.Descriptor) {
			if d.Platform == nil || d.Platform.OS == "unknown" || !d.MediaType.IsImage() {
				return
			}
			p := d.Platform
			out = append(out, PlatformManifest{Platform: imgutil.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion},
				Digest: d.Digest, Available: true})
		}
		if !d.MediaType.IsIndex() {
			add(d)
			continue
		}
		raw, ok := blob(d.Digest)
		if !ok {
			continue
		}
		var im v1.IndexManifest
		if json.Unmarshal(raw, &im) != nil {
			continue
		}
		for _, c := range im.Manifests {
			if _, ok := blob(c.Digest); ok {
				add(c)
			}
		}
	}
	return out, nil
}
