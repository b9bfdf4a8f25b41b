package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

// maxMetadataSize bounds the manifests, indexes and configs read whole.
const maxMetadataSize = 8 << 20

// storedImage is an image of a namespace as a go-containerregistry image:
// its manifest and config read once, its layers read from the content
// store when asked, checked against their digests. No blob is copied.
type storedImage struct {
	// ctx carries the namespace (and the client's connection) for the
	// reads v1.Layer methods make, which take no context.
	ctx         context.Context
	cs          content.Store
	desc        ocispec.Descriptor // the manifest
	rawManifest []byte
	manifest    v1.Manifest
	rawConfig   []byte
}

var _ partial.CompressedImageCore = (*storedImage)(nil)

// openStored reads the image record name of the namespace ctx names: the
// manifest of platform p where it is an index. A missing image, or an index
// without p, is nil.
func openStored(ctx context.Context, is images.Store, cs content.Store, name string, p imgutil.Platform) (*storedImage, error) {
	rec, err := is.Get(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", name, err)
	}
	desc, err := manifestFor(ctx, cs, rec.Target, p)
	if err != nil || desc == nil {
		return nil, err
	}
	img, err := readImage(ctx, cs, *desc)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	return img, nil
}

// readManifest reads the image manifest desc, checked.
func readManifest(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*v1.Manifest, []byte, error) {
	raw, err := readMetadata(ctx, cs, desc)
	if err != nil {
		return nil, nil, fmt.Errorf("reading manifest %s: %w", desc.Digest, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("manifest %s: %w: %w", desc.Digest, imgutil.ErrInvalidArgument, err)
	}
	return &m, raw, nil
}

// readImage reads the image manifest desc and its config, checked: an
// image whose layers are read from the store when asked.
func readImage(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*storedImage, error) {
	m, raw, err := readManifest(ctx, cs, desc)
	if err != nil {
		return nil, err
	}
	img := &storedImage{ctx: ctx, cs: cs, desc: desc, rawManifest: raw, manifest: *m}
	if img.rawConfig, err = readMetadata(ctx, cs, toOCI(m.Config)); err != nil {
		return nil, fmt.Errorf("reading config of %s: %w", desc.Digest, err)
	}
	return img, nil
}

// manifestFor is target itself when it is an image manifest, else the
// manifest of its index for platform p (nil when it has none).
func manifestFor(ctx context.Context, cs content.Store, target ocispec.Descriptor, p imgutil.Platform) (*ocispec.Descriptor, error) {
	if !images.IsIndexType(target.MediaType) {
		return &target, nil
	}
	raw, err := readMetadata(ctx, cs, target)
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("index: %w: %w", imgutil.ErrInvalidArgument, err)
	}
	match := platforms.Only(requested(p))
	for _, d := range idx.Manifests {
		if images.IsManifestType(d.MediaType) && (d.Platform == nil || match.Match(*d.Platform)) {
			return &d, nil
		}
	}
	return nil, nil
}

// requested is the platform asked of an index: p, else this host's.
func requested(p imgutil.Platform) ocispec.Platform {
	want := platforms.DefaultSpec()
	if p.OS != "" {
		want.OS = p.OS
	}
	if p.Architecture != "" {
		want.Architecture, want.Variant = p.Architecture, p.Variant
	}
	want.OSVersion = p.OSVersion
	return want
}

// readMetadata reads the blob desc whole, bounded and checked.
func readMetadata(ctx context.Context, cs content.Store, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxMetadataSize {
		return nil, fmt.Errorf("blob %s is %d bytes, more than metadata may be: %w", desc.Digest, desc.Size, imgutil.ErrInvalidArgument)
	}
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return nil, storeError(err)
	}
	if digest.FromBytes(b) != desc.Digest {
		return nil, fmt.Errorf("blob %s does not match its digest: %w", desc.Digest, imgutil.ErrInvalidArgument)
	}
	return b, nil
}

func (s *storedImage) RawConfigFile() ([]byte, error) { return s.rawConfig, nil }
func (s *storedImage) RawManifest() ([]byte, error)   { return s.rawManifest, nil }
func (s *storedImage) MediaType() (types.MediaType, error) {
	if s.manifest.MediaType != "" {
		return s.manifest.MediaType, nil
	}
	return types.MediaType(s.desc.MediaType), nil
}

// LayerByDigest is the layer blob h of the image, read from the store.
func (s *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range s.manifest.Layers {
		if l.Digest == h {
			return &storedBlob{img: s, desc: l}, nil
		}
	}
	if s.manifest.Config.Digest == h {
		return &storedBlob{img: s, desc: s.manifest.Config}, nil
	}
	return nil, fmt.Errorf("blob %s is not in image %s: %w", h, s.desc.Digest, imgutil.ErrNotFound)
}

// storedBlob is a blob of the content store.
type storedBlob struct {
	img  *storedImage
	desc v1.Descriptor
}

func (b *storedBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *storedBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *storedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

// Compressed reads the blob as stored, checked against its digest at its
// end (see layer.Verifying).
func (b *storedBlob) Compressed() (io.ReadCloser, error) {
	ra, err := b.img.cs.ReaderAt(b.img.ctx, toOCI(b.desc))
	if err != nil {
		return nil, fmt.Errorf("opening blob %s: %w", b.desc.Digest, storeError(err))
	}
	rc := struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(ra, 0, ra.Size()), ra}
	return layer.Verifying(rc, b.desc.Digest, b.desc.Size, "blob "+b.desc.Digest.String(), "digest", nil), nil
}

func toOCI(d v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size, Annotations: d.Annotations}
}

// storeError makes a containerd error matchable with imgutil's classes:
// containerd's errdefs classes are imgutil's (see imgutil.ErrNotFound).
func storeError(err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %w", imgutil.ErrNotFound, err)
	}
	return err
}
