package imgutil

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/layer"
	winlayer "github.com/imgbridge/imgutil/layer"
)

// layerSource is what the core needs of a previous image: its config (for the
// history of reused layers) and its layers by diffID. A v1.Image is one.
type layerSource interface {
	ConfigFile() (*v1.ConfigFile, error)
	LayerByDiffID(v1.Hash) (v1.Layer, error)
}

// coreOptions configure newCore.
type coreOptions struct {
	// Base is the image to start from; nil starts from scratch.
	Base v1.Image
	// Previous is where ReuseLayer finds layers; nil means none.
	Previous layerSource
	// Platform is the platform of an image from scratch (default linux and
	// this program's architecture).
	Platform Platform
	// MediaTypes converts media types on save; DefaultTypes keeps the base's
	// (OCI for an image from scratch).
	MediaTypes MediaTypes
	// CreatedAt is the created time of the config and of new history
	// entries (default NormalizedDateTime).
	CreatedAt time.Time
	// PreserveHistory keeps history; without it history is normalized.
	PreserveHistory bool
	// Config replaces the runtime config of the base.
	Config *v1.Config
	// PreserveDigest saves the config as it is: created and history are
	// not normalized (sparse layouts keep their base's digest).
	PreserveDigest bool
}

// coreOptionsFrom maps the public image options onto coreOptions.
func coreOptionsFrom(o ImageOptions) coreOptions {
	var prev layerSource
	if o.PreviousImage != nil {
		prev = o.PreviousImage
	}
	return coreOptions{
		Base: o.BaseImage, Previous: prev, Platform: o.Platform,
		MediaTypes: GetPreferredMediaTypes(o), CreatedAt: o.CreatedAt,
		PreserveHistory: o.PreserveHistory, Config: o.Config, PreserveDigest: o.PreserveDigest,
	}
}

// CNBImageCore is the editable image every backend embeds: an owned config
// and layer list edited in place, materialized once per state (internal/built) and
// saved by the backend. Its methods are safe for concurrent use.
//
// The embedded v1.Image always answers for the image with the edits made
// so far (an image not edited nor saved is its base itself), so a backend's
// image goes wherever a v1.Image does.
type CNBImageCore struct {
	// Image is the edited image as a go-containerregistry image; it is set
	// once, and answers for the current state on every call.
	v1.Image

	// caches are handed to the layer files added (made from the
	// environment with the image).
	caches layer.Caches

	// mu guards every field below.
	mu sync.Mutex
	// cfg is the owned config; cfg.RootFS.DiffIDs has one entry per layer.
	cfg    *v1.ConfigFile
	layers []v1.Layer
	// annotations are the manifest annotations.
	annotations     map[string]string
	mediaTypes      MediaTypes
	previous        layerSource
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
	built *built.Built
}

var _ v1.Image = (*CNBImageCore)(nil)

// NewCNBImage returns an editable image with options: starting from
// options.BaseImage (or from scratch with options.Platform), reusing layers
// of options.PreviousImage. Backends open the base and previous images and
// call it; the backend-specific names (FromBaseImage by name, Save) are
// theirs.
func NewCNBImage(options ImageOptions) (*CNBImageCore, error) {
	return newCore(coreOptionsFrom(options))
}

// newCore returns an editable image starting from o.Base (or from scratch).
func newCore(o coreOptions) (*CNBImageCore, error) {
	for field, v := range map[string]string{"os": o.Platform.OS, "architecture": o.Platform.Architecture,
		"variant": o.Platform.Variant, "os version": o.Platform.OSVersion} {
		if err := checkPlatformField(field, v); err != nil {
			return nil, err
		}
	}
	img := &CNBImageCore{
		caches:          layer.CachesFromEnv(),
		previous:        o.Previous,
		createdAt:       o.CreatedAt,
		preserveHistory: o.PreserveHistory,
		preserveDigest:  o.PreserveDigest,
		annotations:     map[string]string{},
	}
	if img.createdAt.IsZero() {
		img.createdAt = NormalizedDateTime
	}
	if o.Base == nil {
		img.cfg = scratchConfig(o.Platform)
		img.mediaTypes = o.MediaTypes
		if img.mediaTypes == DefaultTypes || img.mediaTypes == MissingTypes {
			img.mediaTypes = OCITypes
		}
	} else if err := img.loadBase(o.Base, o.MediaTypes); err != nil {
		return nil, err
	}
	if o.Config != nil {
		img.cfg.Config = *o.Config.DeepCopy()
		img.edited = true
	}
	img.Image = liveImage{img}
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

func (i *CNBImageCore) addWindowsBaseLayer() error {
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

func scratchConfig(p Platform) *v1.ConfigFile {
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

func (i *CNBImageCore) loadBase(base v1.Image, mt MediaTypes) error {
	cfg, err := GetConfigFile(base)
	if err != nil {
		return fmt.Errorf("reading base image: %w", err)
	}
	layers, err := base.Layers()
	if err != nil {
		return fmt.Errorf("reading base image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("base image has %d layers and %d diff IDs: %w", len(layers), len(cfg.RootFS.DiffIDs), ErrInvalidArgument)
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
	if mt == DefaultTypes || mt == MissingTypes {
		i.mediaTypes = baseTypes
	}
	i.base, i.baseAsIs = base, i.mediaTypes == baseTypes
	return nil
}

// baseMediaTypes is the family of media types of base. A manifest media
// type left empty (allowed by the OCI spec; images built in memory have
// none) is taken from the config's media type, else OCI.
func baseMediaTypes(base v1.Image) (MediaTypes, error) {
	manifestType, err := base.MediaType()
	if err != nil {
		return MissingTypes, fmt.Errorf("reading base image media type: %w", err)
	}
	if manifestType == "" {
		if m, err := base.Manifest(); err == nil && m != nil && m.Config.MediaType == types.DockerConfigJSON {
			return DockerTypes, nil
		}
		return OCITypes, nil
	}
	mt := MediaTypesOf(manifestType)
	if mt == MissingTypes {
		return mt, ErrUnknownMediaType(manifestType)
	}
	return mt, nil
}

// asIs returns the base when the image is still exactly it: not edited, not
// converted, not saved. Its digest and manifest are then the base's own, as
// the registry or layout holds them.
func (i *CNBImageCore) asIs() v1.Image {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.base != nil && i.baseAsIs && !i.edited && !i.saved {
		return i.base
	}
	return nil
}

// read runs f on the owned config under the lock.
func (i *CNBImageCore) read(f func(c *v1.ConfigFile)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f(i.cfg)
}

// edit runs f under the lock and, if it succeeds, forgets the built image.
func (i *CNBImageCore) edit(f func() error) error {
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
func (i *CNBImageCore) MutateConfigFile(withFunc func(c *v1.ConfigFile)) error {
	return i.edit(func() error { withFunc(i.cfg); return nil })
}

// Edited reports whether any edit was made since New.
func (i *CNBImageCore) Edited() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.edited
}

// MediaTypes returns the family of media types the image is saved with.
func (i *CNBImageCore) MediaTypes() MediaTypes {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mediaTypes
}

// SetMediaTypes changes the family of media types the image is saved with.
func (i *CNBImageCore) SetMediaTypes(mt MediaTypes) error {
	if mt != OCITypes && mt != DockerTypes {
		return fmt.Errorf("media types %d: %w", mt, ErrInvalidArgument)
	}
	return i.edit(func() error { i.mediaTypes = mt; return nil })
}
