package imgutil

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageOption configures a new image.
type ImageOption func(*ImageOptions)

// ImageOptions holds what the ImageOption functions set. Backends resolve
// BaseImageRepoName and PreviousImageRepoName into BaseImage and
// PreviousImage.
type ImageOptions struct {
	BaseImageRepoName     string
	PreviousImageRepoName string
	Config                *v1.Config
	CreatedAt             time.Time
	MediaTypes            MediaTypes
	Platform              Platform
	PreserveHistory       bool
	LayoutOptions
	RemoteOptions
	// BackendOptions are options only one backend reads (see
	// BackendOption), in the order given.
	BackendOptions []BackendOption
	// Progress receives progress updates (WithProgress); nil for none.
	Progress func(Progress)

	// These options must be set by the backend, not the caller.
	BaseImage     v1.Image
	PreviousImage v1.Image
}

// LayoutOptions are the options only the layout backend reads.
type LayoutOptions struct {
	PreserveDigest bool
	WithoutLayers  bool
}

// BackendOption is an option that only one backend reads, carried by the
// core without its fields (the containerd module's namespace, snapshotter,
// compression): the backend named reads Value; every other one refuses it
// (RefuseOtherBackends), where it would be ignored without a word.
type BackendOption struct {
	// Backend is the Kind of the backend that reads it ("containerd").
	Backend string
	// Name says what it sets, for errors (`namespace "k8s.io"`).
	Name string
	// Value is what that backend reads; its type is the backend's own.
	Value any
}

// RefuseOtherBackends returns an error matching ErrInvalidArgument, naming
// the option, when o carries an option of a backend other than backend:
// one of BackendOptions, or one of the fields the core carries for layout
// (WithoutLayers) and remote (RegistrySettings, AddEmptyLayerOnSave).
// PreserveDigest, in LayoutOptions, is read by every backend.
func (o *ImageOptions) RefuseOtherBackends(backend string) error {
	refuse := func(other, name string) error {
		return fmt.Errorf("%s image: an option of the %s backend (%s) does not apply: %w", backend, other, name, ErrInvalidArgument)
	}
	for _, b := range o.BackendOptions {
		if b.Backend != backend {
			return refuse(b.Backend, b.Name)
		}
	}
	if backend != "layout" && o.WithoutLayers {
		return refuse("layout", "WithoutLayersWhenSaved")
	}
	if backend != "remote" {
		for repo := range o.RegistrySettings {
			return refuse("remote", fmt.Sprintf("WithRegistrySetting %q", repo))
		}
		if o.AddEmptyLayerOnSave {
			return refuse("remote", "AddEmptyLayerOnSave")
		}
	}
	return nil
}

// RemoteOptions are the options only the remote backend reads.
type RemoteOptions struct {
	RegistrySettings    map[string]RegistrySetting
	AddEmptyLayerOnSave bool
}

// RegistrySetting holds how to reach one registry.
type RegistrySetting struct {
	Insecure bool
}

// FromBaseImage starts the image from the image with this name, in the
// backend's store. Default: an empty image.
func FromBaseImage(name string) func(*ImageOptions) {
	return func(o *ImageOptions) { o.BaseImageRepoName = name }
}

// WithConfig starts the image from this config instead of the base image's.
func WithConfig(c *v1.Config) func(*ImageOptions) {
	return func(o *ImageOptions) { o.Config = c }
}

// WithCreatedAt sets the created time of the config and of new history
// entries. Default: NormalizedDateTime.
func WithCreatedAt(t time.Time) func(*ImageOptions) {
	return func(o *ImageOptions) { o.CreatedAt = t }
}

// WithDefaultPlatform sets the platform of an image created from scratch and
// picks the matching manifest of a multi-platform base. Default: linux on the
// architecture this program runs on.
func WithDefaultPlatform(p Platform) func(*ImageOptions) {
	return func(o *ImageOptions) { o.Platform = p }
}

// WithHistory keeps the history of the base image and records history for
// new layers. Default: history is normalized (see NormalizedHistory).
func WithHistory() func(*ImageOptions) {
	return func(o *ImageOptions) { o.PreserveHistory = true }
}

// WithMediaTypes converts the manifest, config and layer media types.
// Default: DefaultTypes, the base image's (OCI for an image from scratch).
func WithMediaTypes(m MediaTypes) func(*ImageOptions) {
	return func(o *ImageOptions) { o.MediaTypes = m }
}

// WithPreviousImage names the image whose layers ReuseLayer takes. Default:
// none; ReuseLayer then fails with ErrLayerNotFound.
func WithPreviousImage(name string) func(*ImageOptions) {
	return func(o *ImageOptions) { o.PreviousImageRepoName = name }
}
