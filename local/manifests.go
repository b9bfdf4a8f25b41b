package local

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/userfile"
)

// ManifestCacheEnv names the environment variable that sets where image
// manifests learnt from the containerd image store are kept across
// processes ("off": in memory only). Default: the user cache directory.
const ManifestCacheEnv = "IMGUTIL_MANIFEST_CACHE"

// maxManifestSize bounds a manifest read from the daemon.
const maxManifestSize = 4 << 20

// manifestCache keeps image manifests by digest. A manifest is immutable
// for its digest, so an entry never goes stale; entries are checked against
// their digest when read from disk.
type manifestCache struct {
	dir string

	// mu guards mem.
	mu  sync.Mutex
	mem map[v1.Hash][]byte
}

func newManifestCache() *manifestCache {
	c := &manifestCache{mem: map[v1.Hash][]byte{}}
	switch dir := os.Getenv(ManifestCacheEnv); dir {
	case "off":
	case "":
		if base, err := os.UserCacheDir(); err == nil {
			c.dir = filepath.Join(base, "imgutil", "manifests")
		}
	default:
		c.dir = dir
	}
	return c
}

func (c *manifestCache) get(h v1.Hash) ([]byte, bool) {
	c.mu.Lock()
	raw, ok := c.mem[h]
	c.mu.Unlock()
	if ok || c.dir == "" {
		return raw, ok
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, h.Algorithm, h.Hex))
	if err != nil || sha256Of(raw) != h {
		return nil, false
	}
	c.mu.Lock()
	c.mem[h] = raw
	c.mu.Unlock()
	return raw, true
}

// put keeps raw under its digest; failing to write the disk copy is not an
// error (the cache only saves work).
func (c *manifestCache) put(raw []byte) {
	h := sha256Of(raw)
	c.mu.Lock()
	c.mem[h] = raw
	c.mu.Unlock()
	if c.dir == "" {
		return
	}
	dir := filepath.Join(c.dir, h.Algorithm)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".partial-*")
	if err != nil {
		return
	}
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = userfile.Place(f.Name(), filepath.Join(dir, h.Hex))
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

// manifestAnnotation names the annotation our loads put on the index entry
// of an image for the containerd store: the manifest itself. The store
// keeps the entry as the image record's target (a tag copies it) and
// ImageInspect shows it as the image's Descriptor, so a later process
// learns the layers an image we saved is stored with from the inspect it
// makes anyway, checked against the digest: nothing more to ask.
const manifestAnnotation = "io.imgbridge.imgutil.manifest"

// recordedManifest returns the manifest digest recorded on img's target
// (see manifestAnnotation), when there is one and it is that manifest.
func recordedManifest(img *daemonImage, digest v1.Hash) ([]byte, bool) {
	d := img.inspect.Descriptor
	if d == nil || d.Digest.String() != digest.String() {
		return nil, false
	}
	raw := []byte(d.Annotations[manifestAnnotation])
	if len(raw) == 0 || sha256Of(raw) != digest {
		return nil, false
	}
	return raw, true
}

// storedByDiffID returns, by diffID, the descriptors the containerd store
// holds for the daemon layers among layers: from the manifest known of any
// image opened here (the previous image saved by us names the base's
// blobs too), learning the rest with one manifest probe. A layer left out
// of the map is sent.
func (s *Store) storedByDiffID(ctx context.Context, layers []v1.Layer) map[v1.Hash]v1.Descriptor {
	out := map[v1.Hash]v1.Descriptor{}
	var images []*daemonImage
	for _, l := range layers {
		if dl, ok := l.(*daemonLayer); ok && !slices.Contains(images, dl.image) {
			images = append(images, dl.image)
		}
	}
	add := func(img *daemonImage, cachedOnly bool) bool {
		stored, err := s.storedLayers(ctx, img, cachedOnly)
		if err != nil {
			return false
		}
		for i, d := range stored {
			out[img.cfg.RootFS.DiffIDs[i]] = d
		}
		return true
	}
	var unknown []*daemonImage
	for _, img := range images {
		if !add(img, true) {
			unknown = append(unknown, img)
		}
	}
	// Only images with a layer no known manifest names need learning.
	var need []*daemonImage
	for _, l := range layers {
		if dl, ok := l.(*daemonLayer); ok && slices.Contains(unknown, dl.image) && !slices.Contains(need, dl.image) {
			if _, known := out[dl.diffID]; !known {
				need = append(need, dl.image)
			}
		}
	}
	_ = s.learnManifests(ctx, need)
	for _, img := range need {
		add(img, false)
	}
	return out
}

// errNoStoredManifest is matched when the manifest an image is stored with
// on the containerd store cannot be learnt; its layers are then sent.
var errNoStoredManifest = errors.New("stored manifest unknown")

// storedLayers returns the layer descriptors the containerd image store
// holds for img: from the manifest cache, else (unless cachedOnly) by
// reading the manifest blob out of the image's ImageSave stream, closed as
// soon as it is read. With cachedOnly it asks the daemon nothing.
func (s *Store) storedLayers(ctx context.Context, img *daemonImage, cachedOnly bool) ([]v1.Descriptor, error) {
	img.storedMu.Lock()
	defer img.storedMu.Unlock()
	if img.stored != nil {
		return img.stored, nil
	}
	if d := img.inspect.Descriptor; cachedOnly && (d == nil || !types.MediaType(d.MediaType).IsImage()) {
		return nil, fmt.Errorf("image %s: no cached manifest: %w", img.id, errNoStoredManifest)
	}
	digest, err := s.manifestDigest(ctx, img)
	if err != nil {
		return nil, err
	}
	raw, ok := s.manifests.get(digest)
	if !ok {
		if raw, ok = recordedManifest(img, digest); ok {
			s.manifests.put(raw)
		}
	}
	if !ok && cachedOnly {
		return nil, fmt.Errorf("manifest %s not cached: %w", digest, errNoStoredManifest)
	}
	if !ok {
		// A probe image (a few KiB each way) asks the store for it; else
		// the image's archive is read for it, to its end.
		if s.learnManifests(ctx, []*daemonImage{img}) == nil {
			raw, ok = s.manifests.get(digest)
		}
	}
	if !ok {
		if raw, err = s.scanManifest(ctx, img.id, digest); err != nil {
			return nil, err
		}
		s.manifests.put(raw)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", digest, err)
	}
	if len(m.Layers) != len(img.layers) {
		return nil, fmt.Errorf("manifest %s has %d layers, the image %d: %w", digest, len(m.Layers), len(img.layers), errNoStoredManifest)
	}
	img.stored = m.Layers
	return m.Layers, nil
}

// storedDiffIDs maps the blob digests img is stored with (on the containerd
// store) to its diffIDs, when its manifest is already known: learning it
// is not worth a stream of its own when reading layers.
func (s *Store) storedDiffIDs(ctx context.Context, img *daemonImage) map[string]v1.Hash {
	stored, err := s.storedLayers(ctx, img, true)
	if err != nil {
		return nil
	}
	out := make(map[string]v1.Hash, len(stored))
	for i, d := range stored {
		out[d.Digest.Hex] = img.cfg.RootFS.DiffIDs[i]
	}
	return out
}

// manifestDigest returns the digest of the image manifest img is stored
// with: its target, or the matching manifest of its index.
func (s *Store) manifestDigest(ctx context.Context, img *daemonImage) (v1.Hash, error) {
	d, err := s.manifestDescriptor(ctx, img)
	return d.Digest, err
}

// manifestDescriptor returns the descriptor of the image manifest img is
// stored with (digest and size, as the store has it). For an image stored
// as an index, the daemon is asked once per image, not at every use.
func (s *Store) manifestDescriptor(ctx context.Context, img *daemonImage) (v1.Descriptor, error) {
	img.descMu.Lock()
	defer img.descMu.Unlock()
	if img.desc != nil {
		return *img.desc, nil
	}
	d, err := s.askManifestDescriptor(ctx, img)
	if err == nil {
		img.desc = &d
	}
	return d, err
}

// askManifestDescriptor is manifestDescriptor, unmemoized.
func (s *Store) askManifestDescriptor(ctx context.Context, img *daemonImage) (v1.Descriptor, error) {
	d := img.inspect.Descriptor
	if d == nil {
		return v1.Descriptor{}, fmt.Errorf("image %s has no descriptor: %w", img.id, errNoStoredManifest)
	}
	mt := types.MediaType(d.MediaType)
	if mt.IsImage() {
		h, err := v1.NewHash(d.Digest.String())
		return v1.Descriptor{MediaType: mt, Digest: h, Size: d.Size}, err
	}
	if !mt.IsIndex() {
		return v1.Descriptor{}, fmt.Errorf("image %s target has media type %s: %w", img.id, mt, errNoStoredManifest)
	}
	res, err := s.client.ImageInspect(ctx, img.id, client.ImageInspectWithManifests(true))
	if err != nil {
		return v1.Descriptor{}, daemonError("inspecting manifests of image "+img.id, err)
	}
	for _, ms := range res.Manifests {
		if ms.Kind != "image" || !ms.Available || ms.ImageData == nil {
			continue
		}
		p := ms.ImageData.Platform
		if p.OS == img.cfg.OS && p.Architecture == img.cfg.Architecture && p.Variant == img.cfg.Variant {
			h, err := v1.NewHash(ms.Descriptor.Digest.String())
			return v1.Descriptor{MediaType: types.MediaType(ms.Descriptor.MediaType), Digest: h, Size: ms.Descriptor.Size}, err
		}
	}
	return v1.Descriptor{}, fmt.Errorf("image %s: no available manifest for %s/%s: %w", img.id, img.cfg.OS, img.cfg.Architecture, errNoStoredManifest)
}

// scanManifest reads the blob digest out of the ImageSave stream of
// imageID (the rest of the stream is read too: see serialClient).
func (s *Store) scanManifest(ctx context.Context, imageID string, digest v1.Hash) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := s.client.ImageSave(ctx, []string{s.exportRef(imageID)}, s.saveOptions(ctx, imageID)...)
	if err != nil {
		return nil, daemonError("saving image "+imageID, err)
	}
	defer rc.Close()
	want := "blobs/" + digest.Algorithm + "/" + digest.Hex
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("image %s archive lacks manifest %s: %w", imageID, digest, errNoStoredManifest)
		}
		if err != nil {
			return nil, fmt.Errorf("reading image %s archive: %w", imageID, err)
		}
		if hdr.Name != want {
			continue
		}
		if hdr.Size > maxManifestSize {
			return nil, fmt.Errorf("manifest %s is %d bytes: %w", digest, hdr.Size, imgutil.ErrInvalidArgument)
		}
		raw, err := readBlob(tr, digest)
		if err != nil {
			return nil, fmt.Errorf("manifest: %w: %w", err, errNoStoredManifest)
		}
		return raw, nil
	}
}

// errBlobMismatch says a small blob read from an archive (a manifest, a
// config) does not hash to the digest it is named by.
var errBlobMismatch = errors.New("blob does not match its digest")

// readBlob reads a small blob (bounded by the caller) and checks it
// against digest.
func readBlob(r io.Reader, digest v1.Hash) ([]byte, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", digest, err)
	}
	if sha256Of(raw) != digest {
		return nil, fmt.Errorf("%s: %w", digest, errBlobMismatch)
	}
	return raw, nil
}
