// Package sparse saves images to OCI layouts without their layer blobs: the
// manifest and config only, for tools that need an image's description.
package sparse

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
)

// NewImage returns a layout image at path that starts from from and is
// saved without layer blobs.
func NewImage(path string, from v1.Image, ops ...imgutil.ImageOption) (*layout.Image, error) {
	ops = append(ops, layout.FromBaseImageInstance(from), layout.WithoutLayersWhenSaved())
	return layout.NewImage(path, ops...)
}
