package built

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// Child is one image of a multi-platform image (an index), as a save
// writes it: its descriptor in the index, its manifest and config, raw and
// parsed, and its layers, one per manifest layer.
type Child struct {
	Descriptor  v1.Descriptor
	RawManifest []byte
	Manifest    *v1.Manifest
	RawConfig   []byte
	Config      *v1.ConfigFile
	Layers      []v1.Layer
}

// Platform reports whether the child is a platform's image: not an
// attestation manifest (unknown/unknown, as buildx adds one per platform).
func (c Child) Platform() bool {
	return c.Descriptor.Platform == nil || c.Descriptor.Platform.OS != "unknown"
}

// Children reads the images of idx, in its order. A child that is not an
// image (a nested index), or whose layers, diffIDs and manifest disagree
// in number, is refused (imgerr.ErrInvalidArgument).
func Children(idx v1.ImageIndex) ([]Child, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	out := make([]Child, 0, len(im.Manifests))
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			return nil, fmt.Errorf("index: %s is a %s, not an image: %w", d.Digest, d.MediaType, imgerr.ErrInvalidArgument)
		}
		c := Child{Descriptor: d}
		img, err := idx.Image(d.Digest)
		if err == nil {
			c.RawManifest, err = img.RawManifest()
		}
		if err == nil {
			c.Manifest, err = img.Manifest()
		}
		if err == nil {
			c.RawConfig, err = img.RawConfigFile()
		}
		if err == nil {
			c.Config, err = img.ConfigFile()
		}
		if err == nil {
			c.Layers, err = img.Layers()
		}
		if err != nil {
			return nil, fmt.Errorf("index: manifest %s: %w", d.Digest, err)
		}
		if len(c.Layers) != len(c.Manifest.Layers) || len(c.Config.RootFS.DiffIDs) != len(c.Manifest.Layers) {
			return nil, fmt.Errorf("index: manifest %s: %d layers, %d blobs, %d diffIDs: %w", d.Digest,
				len(c.Manifest.Layers), len(c.Layers), len(c.Config.RootFS.DiffIDs), imgerr.ErrInvalidArgument)
		}
		out = append(out, c)
	}
	return out, nil
}
