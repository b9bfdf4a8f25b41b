package editable

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	winlayer "github.com/imgbridge/imgutil/layer"
)

// Source is what the core needs of a previous image: its config (for the
// history of reused layers) and its layers by diffID. A v1.Image is one.
type Source interface {
	ConfigFile() (*v1.ConfigFile, error)
	LayerByDiffID(v1.Hash) (v1.Layer, error)
}

// Options configure New.
type Options struct {
	// Base is the image to start from; nil starts from scratch.
	Base v1.Image
	// Previous is where ReuseLayer finds layers; nil means none.
	Previous Source
	// Platform is the platform of an image from scratch (default linux and
	// this program's architecture).
	Platform imgutil.Platform
	// MediaTypes converts media types on save; DefaultTypes keeps the base's
	// (OCI for an image from scratch).
	MediaTypes imgutil.MediaTypes
	// CreatedAt is the created time of the config and of new history
	// entries (default imgutil.NormalizedDateTime).
	CreatedAt time.Time
	// PreserveHistory keeps history; without it history is normalized.
	PreserveHistory bool
	// Config replaces the runtime config of the base.
	Config *v1.Config
	// PreserveDigest saves the config as it is: created and history are
	// not normalized (sparse layouts keep their base's digest).
	PreserveDigest bool
}

// OptionsFrom maps the public image options onto Options.
func OptionsFrom(o imgutil.ImageOptions) Options {
	var prev Source
	if o.PreviousImage != nil {
		prev = o.PreviousImage
	}
	return Options{
		Base: o.BaseImage, Previous: prev, Platform: o.Platform,
		MediaTypes: imgutil.GetPreferredMediaTypes(o), CreatedAt: o.CreatedAt,
		PreserveHistory: o.PreserveHistory, Config: o.Config, PreserveDigest: o.PreserveDigest,
	}
}

// Image is an editable image. Its methods are safe for concurrent use.
type Image struct {
	// mu guards every field below.
	mu sync.Mutex
	// cfg is the owned config; cfg.RootFS.DiffIDs has one entry per layer.
	cfg    *v1.ConfigFile
	layers []v1.Layer
	// annotations are the manifest annotations.
	annotations     map[string]string
	mediaTypes      imgutil.MediaTypes
	previous        Source
	createdAt       time.Time
	preserveHistory bool
	preserveDigest  bool
	// base is the image started from, and baseAsIs whether, unedited, the
	// image is exactly it (no media type conversion asked for).
	base     v1.Image
	baseAsIs bool
	// edited is false until the first edit.
	edited bool
	// saved is set once the image was built for a save: it is then what
	// was saved, not the base.
	saved bool
	// built memoizes the materialized image until the next edit.
	built *Built
}

// New returns an editable image starting from o.Base (or from scratch).
func New(o Options) (*Image, error) {
	img := &Image{
		previous:        o.Previous,
		createdAt:       o.CreatedAt,
		preserveHistory: o.PreserveHistory,
		preserveDigest:  o.PreserveDigest,
		annotations:     map[string]string{},
	}
	if img.createdAt.IsZero() {
		img.createdAt = imgutil.NormalizedDateTime
	}
	if o.Base == nil {
		img.cfg = scratchConfig(o.Platform)
		img.mediaTypes = o.MediaTypes
		if img.mediaTypes == imgutil.DefaultTypes || img.mediaTypes == imgutil.MissingTypes {
			img.mediaTypes = imgutil.OCITypes
		}
	} else if err := img.loadBase(o.Base, o.MediaTypes); err != nil {
		return nil, err
	}
	if o.Config != nil {
		img.cfg.Config = *o.Config.DeepCopy()
		img.edited = true
	}
	if len(img.layers) == 0 && img.cfg.OS == "windows" {
		// Windows daemons take no image without a base layer: an empty
		// Windows image starts with the minimal one, as the existing
		// library's do.
		if err := img.addWindowsBaseLayer(); err != nil {
			return nil, err
		}
	}
	return img, nil
}

func (i *Image) addWindowsBaseLayer() error {
	r, err := winlayer.WindowsBaseLayer()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading the Windows base layer: %w", err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(i.mediaTypes.LayerType()))
	if err != nil {
		return fmt.Errorf("reading the Windows base layer: %w", err)
	}
	diffID, err := l.DiffID()
	if err != nil {
		return fmt.Errorf("reading the Windows base layer: %w", err)
	}
	i.appendLocked(l, diffID, v1.History{})
	return nil
}

func scratchConfig(p imgutil.Platform) *v1.ConfigFile {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	return &v1.ConfigFile{
		OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion,
		RootFS: v1.RootFS{Type: "layers"},
	}
}

func (i *Image) loadBase(base v1.Image, mt imgutil.MediaTypes) error {
	cfg, err := imgutil.GetConfigFile(base)
	if err != nil {
		return fmt.Errorf("reading base image: %w", err)
	}
	layers, err := base.Layers()
	if err != nil {
		return fmt.Errorf("reading base image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("base image has %d layers and %d diff IDs: %w", len(layers), len(cfg.RootFS.DiffIDs), imgutil.ErrInvalidArgument)
	}
	i.cfg = cfg.DeepCopy()
	i.layers = layers
	// A base that can tell its annotations without a manifest (a daemon
	// image, whose manifest needs every layer's bytes) says so.
	if a, ok := base.(interface{ ManifestAnnotations() map[string]string }); ok {
		maps.Copy(i.annotations, a.ManifestAnnotations())
	} else if m, err := base.Manifest(); err == nil && m != nil {
		maps.Copy(i.annotations, m.Annotations)
	}
	baseTypes, err := baseMediaTypes(base)
	if err != nil {
		return err
	}
	i.mediaTypes = mt
	if mt == imgutil.DefaultTypes || mt == imgutil.MissingTypes {
		i.mediaTypes = baseTypes
	}
	i.base, i.baseAsIs = base, i.mediaTypes == baseTypes
	return nil
}

// baseMediaTypes is the family of media types of base. A manifest media
// type left empty (allowed by the OCI spec; images built in memory have
// none) is taken from the config's media type, else OCI.
func baseMediaTypes(base v1.Image) (imgutil.MediaTypes, error) {
	manifestType, err := base.MediaType()
	if err != nil {
		return imgutil.MissingTypes, fmt.Errorf("reading base image media type: %w", err)
	}
	if manifestType == "" {
		if m, err := base.Manifest(); err == nil && m != nil && m.Config.MediaType == types.DockerConfigJSON {
			return imgutil.DockerTypes, nil
		}
		return imgutil.OCITypes, nil
	}
	mt := imgutil.MediaTypesOf(manifestType)
	if mt == imgutil.MissingTypes {
		return mt, imgutil.ErrUnknownMediaType(manifestType)
	}
	return mt, nil
}

// asIs returns the base when the image is still exactly it: not edited, not
// converted, not saved. Its digest and manifest are then the base's own, as
// the registry or layout holds them.
func (i *Image) asIs() v1.Image {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.base != nil && i.baseAsIs && !i.edited && !i.saved {
		return i.base
	}
	return nil
}

// BuildForSave is Build for a save: from then on the image is what was
// saved (normalized), no longer its base as is.
func (i *Image) BuildForSave() (*Built, error) {
	i.mu.Lock()
	i.saved = true
	i.mu.Unlock()
	return i.Build()
}

// read runs f on the owned config under the lock.
func (i *Image) read(f func(c *v1.ConfigFile)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f(i.cfg)
}

// edit runs f under the lock and, if it succeeds, forgets the built image.
func (i *Image) edit(f func() error) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := f(); err != nil {
		return err
	}
	i.edited = true
	i.built = nil
	return nil
}

// MutateConfigFile edits the owned config file.
func (i *Image) MutateConfigFile(withFunc func(c *v1.ConfigFile)) error {
	return i.edit(func() error { withFunc(i.cfg); return nil })
}

// Edited reports whether any edit was made since New.
func (i *Image) Edited() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.edited
}

// MediaTypes returns the family of media types the image is saved with.
func (i *Image) MediaTypes() imgutil.MediaTypes {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mediaTypes
}

// SetMediaTypes changes the family of media types the image is saved with.
func (i *Image) SetMediaTypes(mt imgutil.MediaTypes) error {
	if mt != imgutil.OCITypes && mt != imgutil.DockerTypes {
		return fmt.Errorf("media types %d: %w", mt, imgutil.ErrInvalidArgument)
	}
	return i.edit(func() error { i.mediaTypes = mt; return nil })
}

// Layers returns the image's layers, bottom first, without materializing a
// manifest: a backend that needs only diffIDs and bytes (a daemon) uses this.
func (i *Image) Layers() []v1.Layer {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.layers)
}
