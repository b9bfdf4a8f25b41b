package remote

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
)

// AddEmptyLayerOnSave adds an empty layer to an image without layers when
// it is saved (some registries refuse images without layers). Default: off.
func AddEmptyLayerOnSave() func(*imgutil.ImageOptions) {
	return func(o *imgutil.ImageOptions) { o.AddEmptyLayerOnSave = true }
}

// WithRegistrySetting sets how to reach a registry (host[:port]) or
// repository: insecure allows plain HTTP and unverified TLS. Default:
// HTTPS with verified certificates (plain HTTP for localhost).
func WithRegistrySetting(repository string, insecure bool) func(*imgutil.ImageOptions) {
	return func(o *imgutil.ImageOptions) {
		if o.RegistrySettings == nil {
			o.RegistrySettings = map[string]imgutil.RegistrySetting{}
		}
		o.RegistrySettings[repository] = imgutil.RegistrySetting{Insecure: insecure}
	}
}

// FromBaseImage starts the image from the registry image name (for an
// index, the manifest of WithDefaultPlatform). A name the registry does not
// have leaves the image empty. Default: an empty image.
func FromBaseImage(name string) func(*imgutil.ImageOptions) { return imgutil.FromBaseImage(name) }

// WithPreviousImage takes reused layers from the registry image name.
func WithPreviousImage(name string) func(*imgutil.ImageOptions) {
	return imgutil.WithPreviousImage(name)
}

// WithConfig is imgutil.WithConfig.
func WithConfig(c *v1.Config) func(*imgutil.ImageOptions) { return imgutil.WithConfig(c) }

// WithCreatedAt is imgutil.WithCreatedAt.
func WithCreatedAt(t time.Time) func(*imgutil.ImageOptions) { return imgutil.WithCreatedAt(t) }

// WithDefaultPlatform is imgutil.WithDefaultPlatform; it picks the manifest
// of a multi-platform base. Default: linux on this program's architecture.
func WithDefaultPlatform(p imgutil.Platform) func(*imgutil.ImageOptions) {
	return imgutil.WithDefaultPlatform(p)
}

// WithHistory is imgutil.WithHistory.
func WithHistory() func(*imgutil.ImageOptions) { return imgutil.WithHistory() }

// WithMediaTypes is imgutil.WithMediaTypes.
func WithMediaTypes(m imgutil.MediaTypes) func(*imgutil.ImageOptions) {
	return imgutil.WithMediaTypes(m)
}

// FromBaseImageInstance starts the image from image, wherever it lives (a
// daemon, a layout): saving it uploads the blobs the registry lacks.
// Default: an empty image.
func FromBaseImageInstance(image v1.Image) func(*imgutil.ImageOptions) {
	return func(o *imgutil.ImageOptions) { o.BaseImage = image }
}
