package layout

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
)

// FromBaseImageInstance starts the image from image. Default: an empty image.
func FromBaseImageInstance(image v1.Image) func(*imgutil.ImageOptions) {
	return func(o *imgutil.ImageOptions) { o.BaseImage = image }
}

// FromBaseImagePath starts the image from the image in the layout at path
// (the one matching the platform when the layout holds several). A path
// holding no layout leaves the image empty. Default: an empty image.
func FromBaseImagePath(name string) func(*imgutil.ImageOptions) {
	return imgutil.FromBaseImage(name)
}

// WithoutLayersWhenSaved saves manifest and config without layer blobs (a
// sparse layout). Default: layers are saved.
func WithoutLayersWhenSaved() func(*imgutil.ImageOptions) {
	return func(o *imgutil.ImageOptions) { o.WithoutLayers = true }
}

// WithPreviousImage takes reused layers from the image in the layout at path.
func WithPreviousImage(path string) func(*imgutil.ImageOptions) {
	return imgutil.WithPreviousImage(path)
}

// WithConfig is imgutil.WithConfig.
func WithConfig(c *v1.Config) func(*imgutil.ImageOptions) { return imgutil.WithConfig(c) }

// WithCreatedAt is imgutil.WithCreatedAt.
func WithCreatedAt(t time.Time) func(*imgutil.ImageOptions) { return imgutil.WithCreatedAt(t) }

// WithDefaultPlatform is imgutil.WithDefaultPlatform.
func WithDefaultPlatform(p imgutil.Platform) func(*imgutil.ImageOptions) {
	return imgutil.WithDefaultPlatform(p)
}

// WithHistory is imgutil.WithHistory.
func WithHistory() func(*imgutil.ImageOptions) { return imgutil.WithHistory() }

// WithMediaTypes is imgutil.WithMediaTypes.
func WithMediaTypes(m imgutil.MediaTypes) func(*imgutil.ImageOptions) {
	return imgutil.WithMediaTypes(m)
}
