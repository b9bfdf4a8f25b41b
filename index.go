package imgutil

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil/internal/userfile"
)

// ImageIndex is an editable multi-platform index: a list of manifests with
// their platforms and annotations.
type ImageIndex interface {
	Annotations(digest name.Digest) (annotations map[string]string, err error)
	Architecture(digest name.Digest) (arch string, err error)
	OS(digest name.Digest) (os string, err error)
	OSFeatures(digest name.Digest) (osFeatures []string, err error)
	OSVersion(digest name.Digest) (osVersion string, err error)
	Variant(digest name.Digest) (osVariant string, err error)
	SetAnnotations(digest name.Digest, annotations map[string]string) (err error)
	SetArchitecture(digest name.Digest, arch string) (err error)
	SetOS(digest name.Digest, os string) (err error)
	SetVariant(digest name.Digest, osVariant string) (err error)
	Inspect() (string, error)
	AddManifest(image v1.Image)
	RemoveManifest(digest name.Digest) error
	IndexManifest() (*v1.IndexManifest, error)
	Push(ops ...IndexOption) error
	SaveDir() error
	DeleteDir() error
}

var _ ImageIndex = (*CNBIndex)(nil)

// CNBIndex is the ImageIndex of the remote and layout backends. The embedded
// v1.ImageIndex is the index with every edit so far applied.
type CNBIndex struct {
	v1.ImageIndex
	XdgPath  string
	KeyChain authn.Keychain
	RepoName string

	// mu guards the edits: ImageIndex is replaced, never changed in place.
	// It is a pointer, shared by copies of the struct (callers copy it by
	// value); nil in an index made as a literal, whose edits then take no
	// lock.
	mu *sync.Mutex
}

// lock takes the index's lock, if it has one, and returns its release.
func (h *CNBIndex) lock() func() {
	if h.mu == nil {
		return func() {}
	}
	h.mu.Lock()
	return h.mu.Unlock
}

// NewCNBIndex returns an index named repoName, starting from
// options.BaseIndex (or an empty index of options.MediaType).
func NewCNBIndex(repoName string, options IndexOptions) (*CNBIndex, error) {
	if _, err := name.ParseReference(repoName, name.WeakValidation); err != nil {
		return nil, fmt.Errorf("parsing index name %q: %w: %w", repoName, ErrInvalidArgument, err)
	}
	base := options.BaseIndex
	if base == nil {
		mt := options.MediaType
		if mt == "" {
			mt = types.OCIImageIndex
		}
		base = mutate.IndexMediaType(empty.Index, mt)
	}
	im, err := base.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading base index manifest: %w", err)
	}
	if options.MediaType != "" {
		im = im.DeepCopy()
		im.MediaType = options.MediaType
	}
	kc := options.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	return &CNBIndex{
		ImageIndex: &editedIndex{manifest: im, images: map[v1.Hash]v1.Image{}, base: base},
		XdgPath:    options.XdgPath,
		KeyChain:   kc,
		RepoName:   repoName,
		mu:         &sync.Mutex{},
	}, nil
}

func defaultXDGPath() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "imgutil")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "imgutil")
	}
	return filepath.Join(os.TempDir(), "imgutil-indexes")
}

// current returns the index as edited so far.
func (h *CNBIndex) current() *editedIndex {
	if ei, ok := h.ImageIndex.(*editedIndex); ok {
		return ei
	}
	// The caller replaced the embedded index: start editing from it.
	im, err := h.ImageIndex.IndexManifest()
	if err != nil || im == nil {
		im = &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	}
	return &editedIndex{manifest: im, images: map[v1.Hash]v1.Image{}, base: h.ImageIndex}
}

// descriptor returns the manifest descriptor for digest.
func (h *CNBIndex) descriptor(digest name.Digest) (v1.Descriptor, error) {
	defer h.lock()()
	ei := h.current()
	i, err := ei.find(digest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return ei.manifest.Manifests[i], nil
}

// platformOf returns the platform of the manifest for digest: the one its
// descriptor records, completed from the image config.
// platformField returns the platform of the manifest for digest as its
// descriptor gives it when has says the field asked for is set there (as
// the existing library answers, field by field), else as the image's
// config gives it.
func (h *CNBIndex) platformField(digest name.Digest, has func(v1.Platform) bool) (v1.Platform, error) {
	d, err := h.descriptor(digest)
	if err != nil {
		return v1.Platform{}, err
	}
	if d.Platform != nil && has(*d.Platform) {
		return *d.Platform, nil
	}
	img, err := h.Image(d.Digest)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("reading image %s: %w", d.Digest, err)
	}
	cfg, err := GetConfigFile(img)
	if err != nil {
		return v1.Platform{}, err
	}
	return platformOfConfig(cfg), nil
}

func platformOfConfig(cfg *v1.ConfigFile) v1.Platform {
	return v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant,
		OSVersion: cfg.OSVersion, OSFeatures: slices.Clone(cfg.OSFeatures)}
}

// OS returns the OS of the manifest for digest.
func (h *CNBIndex) OS(digest name.Digest) (os string, err error) {
	p, err := h.platformField(digest, func(p v1.Platform) bool { return p.OS != "" })
	return p.OS, err
}

// Architecture returns the architecture of the manifest for digest.
func (h *CNBIndex) Architecture(digest name.Digest) (arch string, err error) {
	p, err := h.platformField(digest, func(p v1.Platform) bool { return p.Architecture != "" })
	return p.Architecture, err
}

// Variant returns the architecture variant of the manifest for digest.
func (h *CNBIndex) Variant(digest name.Digest) (osVariant string, err error) {
	p, err := h.platformField(digest, func(p v1.Platform) bool { return p.Variant != "" })
	return p.Variant, err
}

// OSVersion returns the OS version of the manifest for digest.
func (h *CNBIndex) OSVersion(digest name.Digest) (osVersion string, err error) {
	p, err := h.platformField(digest, func(p v1.Platform) bool { return p.OSVersion != "" })
	return p.OSVersion, err
}

// OSFeatures returns the OS features of the manifest for digest.
func (h *CNBIndex) OSFeatures(digest name.Digest) (osFeatures []string, err error) {
	p, err := h.platformField(digest, func(p v1.Platform) bool { return len(p.OSFeatures) > 0 })
	return p.OSFeatures, err
}

// Annotations returns the annotations of the manifest descriptor for digest.
func (h *CNBIndex) Annotations(digest name.Digest) (annotations map[string]string, err error) {
	d, err := h.descriptor(digest)
	return d.Annotations, err
}

// IndexManifest returns the index manifest with every edit applied.
func (h *CNBIndex) IndexManifest() (*v1.IndexManifest, error) {
	defer h.lock()()
	return h.current().manifest.DeepCopy(), nil
}

// edit applies change to the descriptor for digest.
func (h *CNBIndex) edit(digest name.Digest, change func(d *v1.Descriptor)) error {
	defer h.lock()()
	ei := h.current()
	i, err := ei.find(digest)
	if err != nil {
		return err
	}
	next := ei.clone()
	change(&next.manifest.Manifests[i])
	h.ImageIndex = next
	return nil
}

func withPlatform(d *v1.Descriptor, set func(p *v1.Platform)) {
	if d.Platform == nil {
		d.Platform = &v1.Platform{}
	}
	set(d.Platform)
}

// SetAnnotations adds annotations to the manifest descriptor for digest.
func (h *CNBIndex) SetAnnotations(digest name.Digest, annotations map[string]string) (err error) {
	return h.edit(digest, func(d *v1.Descriptor) {
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		for k, v := range annotations {
			d.Annotations[k] = v
		}
	})
}

// SetArchitecture sets the architecture of the manifest descriptor for digest.
func (h *CNBIndex) SetArchitecture(digest name.Digest, arch string) (err error) {
	return h.edit(digest, func(d *v1.Descriptor) { withPlatform(d, func(p *v1.Platform) { p.Architecture = arch }) })
}

// SetOS sets the OS of the manifest descriptor for digest.
func (h *CNBIndex) SetOS(digest name.Digest, os string) (err error) {
	return h.edit(digest, func(d *v1.Descriptor) { withPlatform(d, func(p *v1.Platform) { p.OS = os }) })
}

// SetVariant sets the architecture variant of the manifest descriptor for digest.
func (h *CNBIndex) SetVariant(digest name.Digest, osVariant string) (err error) {
	return h.edit(digest, func(d *v1.Descriptor) { withPlatform(d, func(p *v1.Platform) { p.Variant = osVariant }) })
}

// Image returns the image of the manifest with digest hash.
func (h *CNBIndex) Image(hash v1.Hash) (v1.Image, error) {
	unlock := h.lock()
	ii := h.ImageIndex
	unlock()
	return ii.Image(hash)
}

// AddManifest adds image to the index, with the platform of its config.
// An image that cannot be read is recorded without a platform.
func (h *CNBIndex) AddManifest(image v1.Image) {
	defer h.lock()()
	next := h.current().clone()
	d, err := descriptorOf(image)
	if err != nil {
		return
	}
	next.manifest.Manifests = slices.DeleteFunc(next.manifest.Manifests, func(m v1.Descriptor) bool { return m.Digest == d.Digest })
	next.manifest.Manifests = append(next.manifest.Manifests, d)
	next.images[d.Digest] = image
	h.ImageIndex = next
}

func descriptorOf(image v1.Image) (v1.Descriptor, error) {
	d, err := partialDescriptor(image)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if cfg, err := image.ConfigFile(); err == nil && cfg != nil {
		p := platformOfConfig(cfg)
		d.Platform = &p
	}
	return d, nil
}

func partialDescriptor(image v1.Image) (v1.Descriptor, error) {
	mt, err := image.MediaType()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("getting media type: %w", err)
	}
	dg, err := image.Digest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("getting digest: %w", err)
	}
	size, err := image.Size()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("getting size: %w", err)
	}
	return v1.Descriptor{MediaType: mt, Digest: dg, Size: size}, nil
}

// RemoveManifest removes the manifest for digest from the index.
func (h *CNBIndex) RemoveManifest(digest name.Digest) (err error) {
	defer h.lock()()
	ei := h.current()
	i, err := ei.find(digest)
	if err != nil {
		return err
	}
	next := ei.clone()
	next.manifest.Manifests = slices.Delete(next.manifest.Manifests, i, i+1)
	h.ImageIndex = next
	return nil
}

// Inspect returns the index manifest as indented JSON.
func (h *CNBIndex) Inspect() (string, error) {
	im, err := h.IndexManifest()
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding index manifest: %w", err)
	}
	return string(b), nil
}

// dir is where SaveDir writes the index: under XdgPath, or when it is ""
// (as callers may set it), under the XDG runtime directory.
func (h *CNBIndex) dir() string {
	xdg := h.XdgPath
	if xdg == "" {
		xdg = defaultXDGPath()
	}
	return filepath.Join(xdg, MakeFileSafeName(h.RepoName))
}

// SaveDir writes the index and every image it holds as an OCI layout under
// XdgPath. The layout is written beside its place and renamed into it.
func (h *CNBIndex) SaveDir() error {
	unlock := h.lock()
	ii := h.ImageIndex
	unlock()
	dir := h.dir()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("creating index directory: %w", err)
	}
	tmp, err := userfile.MkdirTemp(filepath.Dir(dir), ".imgutil-index-*")
	if err != nil {
		return fmt.Errorf("creating index directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeIndexLayout(tmp, ii); err != nil {
		return fmt.Errorf("writing index layout: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replacing index directory: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("replacing index directory: %w", err)
	}
	return nil
}

// Push uploads the index and its images to the registry named RepoName and
// tags it with the WithTags tags; WithPurge then deletes the saved directory.
func (h *CNBIndex) Push(ops ...IndexOption) error {
	var o IndexOptions
	for _, op := range ops {
		if err := op(&o); err != nil {
			return err
		}
	}
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(h.RepoName, nameOpts...)
	if err != nil {
		return fmt.Errorf("parsing index name %q: %w: %w", h.RepoName, ErrInvalidArgument, err)
	}
	unlock := h.lock()
	ii := h.ImageIndex
	unlock()
	if o.MediaType != "" {
		// Pushed as the kind of index asked for (an OCI index or a Docker
		// manifest list).
		if !o.MediaType.IsIndex() {
			return fmt.Errorf("index media type %q: %w", o.MediaType, ErrInvalidArgument)
		}
		ii = mutate.IndexMediaType(ii, o.MediaType)
	}
	kc := h.KeyChain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithAuthFromKeychain(kc), remote.WithTransport(GetTransport(o.Insecure))}
	if err := remote.WriteIndex(ref, ii, ropts...); err != nil {
		return fmt.Errorf("pushing index %s: %w", ref, err)
	}
	for _, tag := range o.DestinationTags {
		t := ref.Context().Tag(tag)
		if err := remote.Tag(t, ii, ropts...); err != nil {
			return fmt.Errorf("tagging index %s: %w", t, err)
		}
	}
	if o.Purge {
		return h.DeleteDir()
	}
	return nil
}

// DeleteDir removes the directory SaveDir writes.
func (h *CNBIndex) DeleteDir() error {
	if err := os.RemoveAll(h.dir()); err != nil {
		return fmt.Errorf("deleting index directory: %w", err)
	}
	return nil
}
