package containerd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"golang.org/x/sync/errgroup"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/layer"
)

// Defaults of the options.
const (
	DefaultNamespace   = "default"
	DefaultSnapshotter = "overlayfs"
)

// Image is an image saved into a containerd namespace: its name is an image
// reference ("example.com/app:1", or "app:1", which containerd keeps as
// docker.io/library/app:1).
type Image struct {
	*imgutil.CNBImageCore

	client      *client.Client
	owned       bool // the client was dialled here: Close closes it
	namespace   string
	snapshotter string
	skipUnpack  bool
	compression Compression
	// sums are the gzip digests of layers compressed before.
	sums     *layer.Sums
	platform imgutil.Platform
	progress func(imgutil.Progress)

	// blobs are the blobs the images opened from the namespace (base,
	// previous) list.
	blobs map[v1.Hash]bool

	// mu guards name, saved and snapshotter once set.
	mu   sync.Mutex
	name string
	// saved is the manifest digest of the last save.
	saved v1.Hash
}

var (
	_ imgutil.ContextImage = (*Image)(nil)
	_ v1.Image             = (*Image)(nil)
)

// options are what this backend's options set. They travel in the core's
// ImageOptions as imgutil.BackendOption values of backend "containerd"
// (see option); other backends refuse them.
type options struct {
	namespace   string
	snapshotter string
	skipUnpack  bool
	compression Compression
	// unpack are the platforms SaveIndex unpacks (UnpackPlatforms).
	unpack []imgutil.Platform
}

// option makes an imgutil.ImageOption of this backend, described by name
// in errors, that sets what f sets.
func option(name string, f func(*options)) imgutil.ImageOption {
	return func(o *imgutil.ImageOptions) {
		o.BackendOptions = append(o.BackendOptions, imgutil.BackendOption{Backend: kind, Name: name, Value: f})
	}
}

// kind is this backend's Kind.
const kind = "containerd"

// ownOptions reads this backend's options of o, refusing another
// backend's.
func ownOptions(o *imgutil.ImageOptions) (options, error) {
	var own options
	if err := o.RefuseOtherBackends(kind); err != nil {
		return own, err
	}
	for _, b := range o.BackendOptions {
		f, ok := b.Value.(func(*options))
		if !ok {
			return own, fmt.Errorf("containerd image: option %s was not made by this module: %w", b.Name, imgutil.ErrInvalidArgument)
		}
		f(&own)
	}
	return own, nil
}

// begin reads ops for a call on the image name: the core's options, this
// backend's (another backend's refused; the namespace defaulted), and name
// normalised.
func begin(name string, ops []imgutil.ImageOption) (imgutil.ImageOptions, options, string, error) {
	var o imgutil.ImageOptions
	for _, op := range ops {
		op(&o)
	}
	own, err := ownOptions(&o)
	if err != nil {
		return o, own, "", err
	}
	if own.namespace == "" {
		own.namespace = DefaultNamespace
	}
	n, err := normalize(name)
	return o, own, n, err
}

// WithNamespace sets the containerd namespace of the image, its base and
// previous images (default "default"; "k8s.io" for the CRI plugin, "moby"
// for Docker with the containerd image store). The local, remote and
// layout backends refuse it (ErrInvalidArgument), as every option of this
// backend.
func WithNamespace(ns string) imgutil.ImageOption {
	return option(fmt.Sprintf("namespace %q", ns), func(o *options) { o.namespace = ns })
}

// WithSnapshotter sets the snapshotter a save unpacks the image for
// (default: the namespace's default, its label
// containerd.io/defaults/snapshotter, else containerd's, overlayfs).
func WithSnapshotter(name string) imgutil.ImageOption {
	return option(fmt.Sprintf("snapshotter %q", name), func(o *options) { o.snapshotter = name })
}

// WithoutUnpack saves the image's content and record only: nothing is
// unpacked until a runtime asks.
func WithoutUnpack() imgutil.ImageOption {
	return option("without unpack", func(o *options) { o.skipUnpack = true })
}

// UnpackPlatforms names the platforms of a multi-platform image SaveIndex
// unpacks (default: the one imgutil.WithDefaultPlatform names, else this
// machine's). An image (NewImage) has one platform: there it is refused.
func UnpackPlatforms(platforms ...imgutil.Platform) imgutil.ImageOption {
	var names []string
	for _, p := range platforms {
		names = append(names, p.OS+"/"+p.Architecture)
	}
	return option("unpack platforms "+strings.Join(names, ", "), func(o *options) { o.unpack = append(o.unpack, platforms...) })
}

// NewImage returns an image named name in the containerd c talks to. With
// imgutil.FromBaseImage it starts from an image of the namespace, with
// imgutil.WithPreviousImage ReuseLayer takes layers of another: their
// blobs are referenced where they are, never copied.
func NewImage(name string, c *client.Client, ops ...imgutil.ImageOption) (*Image, error) {
	return NewImageContext(context.Background(), name, c, ops...)
}

// NewImageAt is NewImage on a client dialled to the containerd socket at
// address; Close closes it.
func NewImageAt(name, address string, ops ...imgutil.ImageOption) (*Image, error) {
	c, err := client.New(address)
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", address, err)
	}
	img, err := NewImageContext(context.Background(), name, c, ops...)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	img.owned = true
	return img, nil
}

// NewImageContext is NewImage with a context for the reads it makes.
func NewImageContext(ctx context.Context, name string, c *client.Client, ops ...imgutil.ImageOption) (*Image, error) {
	o, own, _, err := begin(name, ops)
	if err == nil && len(own.unpack) > 0 {
		err = fmt.Errorf("containerd image: UnpackPlatforms applies to SaveIndex (an image has one platform): %w", imgutil.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("no containerd client: %w", imgutil.ErrInvalidArgument)
	}
	// The core reads none of them.
	o.BackendOptions = nil
	img := &Image{client: c, namespace: own.namespace, snapshotter: own.snapshotter, skipUnpack: own.skipUnpack,
		compression: own.compression, platform: o.Platform, progress: o.Progress, name: name}
	switch img.compression {
	case "":
		img.compression = Gzip
	case Gzip, Zstd, Uncompressed:
	default:
		return nil, fmt.Errorf("compression %q (gzip, zstd or uncompressed): %w", img.compression, imgutil.ErrInvalidArgument)
	}
	if img.compression == Gzip {
		img.sums = layer.SumsFromEnv()
	}
	// Base and previous are read at once. Reads of their layers, later,
	// need the namespace and no deadline of ours.
	rctx := img.nsContext(context.WithoutCancel(ctx))
	roles := []struct {
		name   string
		dst    *v1.Image
		role   string
		stored *storedImage
	}{{name: o.BaseImageRepoName, dst: &o.BaseImage, role: "base"}, {name: o.PreviousImageRepoName, dst: &o.PreviousImage, role: "previous"}}
	var g errgroup.Group
	for j := range roles {
		r := &roles[j]
		if *r.dst != nil || r.name == "" {
			continue
		}
		n, err := normalize(r.name)
		if err != nil {
			return nil, err
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s, err := openStored(rctx, c.ImageService(), c.ContentStore(), n, o.Platform)
			if err != nil {
				return fmt.Errorf("reading %s image: %w", r.role, err)
			}
			if s != nil {
				if *r.dst, err = partial.CompressedToImage(s); err != nil {
					return fmt.Errorf("reading %s image: %w", r.role, err)
				}
				r.stored = s
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, r := range roles {
		if r.stored != nil {
			img.remember(r.stored)
		}
	}
	core, err := imgutil.NewCNBImage(o)
	if err != nil {
		return nil, err
	}
	img.CNBImageCore = core
	return img, nil
}

// remember records the blobs the manifest of s lists.
func (i *Image) remember(s *storedImage) {
	if i.blobs == nil {
		i.blobs = map[v1.Hash]bool{}
	}
	i.blobs[s.manifest.Config.Digest] = true
	for _, l := range s.manifest.Layers {
		i.blobs[l.Digest] = true
	}
}

// openedHas reports whether an image opened from the namespace lists the
// blob d.
func (i *Image) openedHas(d v1.Hash) bool { return i.blobs[d] }

// normalize is name as containerd keeps image names (the Docker way:
// docker.io/library/app:latest).
func normalize(name string) (string, error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w: %w", name, imgutil.ErrInvalidArgument, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// snapshotterName is the snapshotter a save unpacks for: WithSnapshotter's,
// else the namespace's default (its label containerd.io/defaults/snapshotter,
// as ctr and nerdctl read it), else DefaultSnapshotter. Looked up once.
func (i *Image) snapshotterName(ctx context.Context) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.snapshotter != "" {
		return i.snapshotter, nil
	}
	key := i.nsKey()
	if v, ok := nsSnapshotters.Load(key); ok && time.Since(v.(nsSnapshotter).at) < nsLabelTTL {
		i.snapshotter = v.(nsSnapshotter).name
		return i.snapshotter, nil
	}
	labels, err := i.client.NamespaceService().Labels(i.nsContext(ctx), i.namespace)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("reading the labels of namespace %s: %w", i.namespace, storeError(err))
	}
	i.snapshotter = DefaultSnapshotter
	if l := labels[defaultSnapshotterLabel]; l != "" {
		i.snapshotter = l
	}
	nsSnapshotters.Store(key, nsSnapshotter{name: i.snapshotter, at: time.Now()})
	return i.snapshotter, nil
}

// nsSnapshotters remember, per containerd and namespace, the default
// snapshotter read from the namespace's label, for nsLabelTTL: a build
// tool making an Image per build asks once a minute, not once a save.
var nsSnapshotters sync.Map // nsKey -> nsSnapshotter

const nsLabelTTL = time.Minute

// nsKey names a namespace of a containerd: its address (as the gRPC
// client dialled it), so that a process making a client per build keeps
// one entry, and no closed client stays referenced.
type nsKey struct {
	address   string
	namespace string
}

func (i *Image) nsKey() nsKey {
	address := fmt.Sprintf("%p", i.client) // no address known: the client
	if c, ok := i.client.Conn().(interface{ Target() string }); ok {
		address = c.Target()
	}
	return nsKey{address: address, namespace: i.namespace}
}

type nsSnapshotter struct {
	name string
	at   time.Time
}

// defaultSnapshotterLabel is the namespace label naming its default
// snapshotter.
const defaultSnapshotterLabel = "containerd.io/defaults/snapshotter"

// nsContext is ctx in the image's namespace.
func (i *Image) nsContext(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, i.namespace)
}

// Kind returns "containerd".
func (i *Image) Kind() string { return "containerd" }

// Name returns the name the image is saved under.
func (i *Image) Name() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.name
}

// Rename changes the name the image is saved under.
func (i *Image) Rename(name string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.name = name
}

// Namespace is the containerd namespace of the image.
func (i *Image) Namespace() string { return i.namespace }

// Found reports whether the namespace has an image under the image's name;
// a containerd that cannot be asked reports false: FoundE tells.
func (i *Image) Found() bool {
	ok, _ := i.FoundE(context.Background())
	return ok
}

// FoundE reports whether the namespace has an image under the image's
// name, and an error when containerd could not be asked.
func (i *Image) FoundE(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n, err := normalize(i.Name())
	if err != nil {
		return false, err
	}
	_, err = i.client.ImageService().Get(i.nsContext(ctx), n)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Valid reports whether the image exists with all its content.
func (i *Image) Valid() bool {
	ok, _ := i.ValidE(context.Background())
	return ok
}

// ValidE reports whether the image exists with every blob of its manifest
// in the content store.
func (i *Image) ValidE(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n, err := normalize(i.Name())
	if err != nil {
		return false, err
	}
	nctx := i.nsContext(ctx)
	s, err := openStored(nctx, i.client.ImageService(), i.client.ContentStore(), n, i.platform)
	if s == nil || err != nil {
		if errors.Is(err, imgutil.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	for _, l := range s.manifest.Layers {
		if _, err := i.client.ContentStore().Info(nctx, toOCI(l).Digest); cerrdefs.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

// Identifier returns the manifest digest of the image as last saved, else
// as the namespace holds it under its name.
func (i *Image) Identifier() (imgutil.Identifier, error) {
	i.mu.Lock()
	saved := i.saved
	i.mu.Unlock()
	if saved.Hex != "" {
		return Identifier{Digest: saved.String(), Namespace: i.namespace}, nil
	}
	n, err := normalize(i.Name())
	if err != nil {
		return nil, err
	}
	rec, err := i.client.ImageService().Get(i.nsContext(context.Background()), n)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s is not in namespace %s: %w", n, i.namespace, imgutil.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return Identifier{Digest: rec.Target.Digest.String(), Namespace: i.namespace}, nil
}

// Identifier is a manifest digest in a namespace.
type Identifier struct {
	Digest    string
	Namespace string
}

func (id Identifier) String() string { return id.Digest }

// Delete removes the image record under the image's name (its content and
// snapshots go with containerd's garbage collection). A missing image
// matches imgutil.ErrNotFound.
func (i *Image) Delete() error {
	n, err := normalize(i.Name())
	if err != nil {
		return err
	}
	err = i.client.ImageService().Delete(i.nsContext(context.Background()), n, images.SynchronousDelete())
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("deleting image %s: %w", n, imgutil.ErrNotFound)
	}
	return err
}

// SaveFile writes the image as a `docker load`-able tar tagged with its
// name and returns the path; no partial file is left on failure.
func (i *Image) SaveFile() (string, error) { return i.SaveFileContext(context.Background()) }

// SaveFileContext is SaveFile stopped (leaving no file) once ctx is done.
func (i *Image) SaveFileContext(ctx context.Context) (string, error) {
	b, err := built.ForSave(i.CNBImageCore)
	if err != nil {
		return "", err
	}
	return archive.WriteTaggedImageFile(ctx, b, i.Name(), "imgutil-containerd-*.tar", archive.Reporter(i.progress, "export"))
}

// Close closes the client when NewImageAt dialled it.
func (i *Image) Close() error {
	if i.owned {
		return i.client.Close()
	}
	return nil
}
