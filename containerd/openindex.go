package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
)

// ErrNotIndex is OpenIndex's error for a name that points at one image,
// not at a multi-platform image.
var ErrNotIndex = errors.New("not a multi-platform image")

// IncompleteIndexError is OpenIndex's error for a multi-platform image of
// which the namespace holds some images only (an image pulled for one
// platform, the default of ctr, nerdctl and the CRI): Missing lists the
// manifests it lacks (a blob of theirs, or them). It matches
// imgutil.ErrNotFound.
type IncompleteIndexError struct {
	Name    string
	Missing []v1.Descriptor
	// Index is the index as stored: its Missing images cannot be read,
	// the others can (mutate.RemoveManifests makes an index of those).
	Index v1.ImageIndex
}

func (e *IncompleteIndexError) Error() string {
	var what []string
	for _, d := range e.Missing {
		p := "no platform"
		if d.Platform != nil {
			p = d.Platform.String()
		}
		what = append(what, p+" ("+d.Digest.String()+")")
	}
	return fmt.Sprintf("%s: the namespace lacks the content of %s", e.Name, strings.Join(what, ", "))
}

// Is matches imgutil.ErrNotFound.
func (e *IncompleteIndexError) Is(target error) bool { return target == imgutil.ErrNotFound }

// OpenIndex opens the multi-platform image name of the namespace
// (WithNamespace; default "default") as an index: its images, configs and
// layers are read from the content store when asked, each checked against
// its digest; nothing is copied. A name that is not there is
// imgutil.ErrNotFound; one that points at one image is ErrNotIndex. Every
// image the index lists must be held whole (manifest, config, layers),
// else the error is an *IncompleteIndexError: a copy of the index would
// name blobs it cannot give. The index is read under ctx; its blobs later
// under ctx's values, without its deadline.
func OpenIndex(ctx context.Context, c *client.Client, name string, ops ...imgutil.ImageOption) (v1.ImageIndex, error) {
	_, own, n, err := begin(name, ops)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("no containerd client: %w", imgutil.ErrInvalidArgument)
	}
	img := &Image{namespace: own.namespace}
	// Read under ctx while it is opened and checked; its blobs later under
	// ctx's values, without its deadline.
	cctx, rctx := img.nsContext(ctx), img.nsContext(context.WithoutCancel(ctx))
	rec, err := c.ImageService().Get(cctx, n)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", n, storeError(err))
	}
	if !images.IsIndexType(rec.Target.MediaType) {
		return nil, fmt.Errorf("%s is a %s: %w", n, rec.Target.MediaType, ErrNotIndex)
	}
	idx, err := openStoredIndex(cctx, c.ContentStore(), rec.Target)
	if err != nil {
		return nil, fmt.Errorf("reading index of %s: %w", n, err)
	}
	missing, err := built.Missing(&idx.manifest, idx.store(cctx))
	if err != nil {
		return nil, fmt.Errorf("reading index of %s: %w", n, err)
	}
	idx.ctx = rctx
	if len(missing) > 0 {
		return nil, &IncompleteIndexError{Name: n, Missing: missing, Index: idx}
	}
	return idx, nil
}

// storedIndex is an index of the content store as a go-containerregistry
// index.
type storedIndex struct {
	ctx      context.Context // see storedImage.ctx
	cs       content.Store
	desc     ocispec.Descriptor
	raw      []byte
	manifest v1.IndexManifest
}

var _ v1.ImageIndex = (*storedIndex)(nil)

func openStoredIndex(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*storedIndex, error) {
	raw, err := readMetadata(ctx, cs, desc)
	if err != nil {
		return nil, err
	}
	idx := &storedIndex{ctx: ctx, cs: cs, desc: desc, raw: raw}
	if err := json.Unmarshal(raw, &idx.manifest); err != nil {
		return nil, fmt.Errorf("index %s: %w: %w", desc.Digest, imgutil.ErrInvalidArgument, err)
	}
	return idx, nil
}

// store is what the content store holds of the index's blobs, read under
// ctx.
func (x *storedIndex) store(ctx context.Context) built.Store {
	return built.Store{
		Has: func(h v1.Hash) (bool, error) {
			_, err := x.cs.Info(ctx, digest.Digest(h.String()))
			if cerrdefs.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		},
		Manifest: func(d v1.Descriptor) (*v1.Manifest, error) {
			m, _, err := readManifest(ctx, x.cs, toOCI(d))
			return m, err
		},
		Index: func(d v1.Descriptor) (*v1.IndexManifest, error) {
			child, err := openStoredIndex(ctx, x.cs, toOCI(d))
			if err != nil {
				return nil, err
			}
			return &child.manifest, nil
		},
	}
}

// image reads the image manifest d and its config.
func (x *storedIndex) image(d v1.Descriptor) (*storedImage, error) {
	return readImage(x.ctx, x.cs, toOCI(d))
}

// child is the descriptor of h in the index.
func (x *storedIndex) child(h v1.Hash) (v1.Descriptor, error) {
	for _, d := range x.manifest.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s is not in index %s: %w", h, x.desc.Digest, imgutil.ErrNotFound)
}

func (x *storedIndex) MediaType() (types.MediaType, error) {
	if x.manifest.MediaType != "" {
		return x.manifest.MediaType, nil
	}
	return types.MediaType(x.desc.MediaType), nil
}

func (x *storedIndex) Digest() (v1.Hash, error) { return v1.NewHash(x.desc.Digest.String()) }
func (x *storedIndex) Size() (int64, error)     { return int64(len(x.raw)), nil }
func (x *storedIndex) RawManifest() ([]byte, error) {
	return x.raw, nil
}

func (x *storedIndex) IndexManifest() (*v1.IndexManifest, error) {
	m := x.manifest
	m.Manifests = append([]v1.Descriptor(nil), m.Manifests...)
	return &m, nil
}

func (x *storedIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is a %s, not an image: %w", h, d.MediaType, imgutil.ErrInvalidArgument)
	}
	img, err := x.image(d)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

func (x *storedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is a %s, not an index: %w", h, d.MediaType, imgutil.ErrInvalidArgument)
	}
	return openStoredIndex(x.ctx, x.cs, toOCI(d))
}

// Layer is a child that is neither image nor index (an artifact's blob),
// read from the store and checked, as copies of the index read it.
func (x *storedIndex) Layer(h v1.Hash) (v1.Layer, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToLayer(&storedBlob{img: &storedImage{ctx: x.ctx, cs: x.cs}, desc: d})
}
