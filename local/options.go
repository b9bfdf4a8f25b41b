package local

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
)

// FromBaseImage starts the image from the daemon image name. A name the
// daemon does not have leaves the image empty. Default: an empty image.
func FromBaseImage(name string) func(*imgutil.ImageOptions) { return imgutil.FromBaseImage(name) }

// WithPreviousImage takes reused layers from the daemon image name. A name
// the daemon does not have means no previous image. Default: none.
func WithPreviousImage(name string) func(*imgutil.ImageOptions) {
	return imgutil.WithPreviousImage(name)
}

// WithConfig is imgutil.WithConfig.
func WithConfig(c *v1.Config) func(*imgutil.ImageOptions) { return imgutil.WithConfig(c) }

// WithCreatedAt is imgutil.WithCreatedAt.
func WithCreatedAt(t time.Time) func(*imgutil.ImageOptions) { return imgutil.WithCreatedAt(t) }

// WithDefaultPlatform sets the platform of an image from scratch (default:
// the daemon's) and, on daemons with API 1.49+, which variant of a
// multi-platform image is read.
func WithDefaultPlatform(p imgutil.Platform) func(*imgutil.ImageOptions) {
	return imgutil.WithDefaultPlatform(p)
}

// WithHistory is imgutil.WithHistory; it also makes NewImage read the
// history of the base and previous images from the daemon.
func WithHistory() func(*imgutil.ImageOptions) { return imgutil.WithHistory() }

// WithMediaTypes is imgutil.WithMediaTypes. Default for the daemon: Docker.
func WithMediaTypes(m imgutil.MediaTypes) func(*imgutil.ImageOptions) {
	return imgutil.WithMediaTypes(m)
}

// FromBaseImageInstance starts the image from image, wherever it lives (a
// registry, a layout): saving it loads its layers into the daemon,
// streamed from their store once. Default: an empty image.
func FromBaseImageInstance(image v1.Image) func(*imgutil.ImageOptions) {
	return func(o *imgutil.ImageOptions) { o.BaseImage = image }
}
