// Package sparse saves images to OCI layouts without their layer blobs: the
// manifest and config only, for tools that need an image's description.
package sparse

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
)

// NewImage returns a layout image at path that starts from from and is
// saved without layer blobs, with its digest preserved: unedited, it is
// saved byte for byte as from is (the lifecycle names such layouts by
// that digest); edited, its created time and history are kept as they are.
func NewImage(path string, from v1.Image, ops ...imgutil.ImageOption) (*layout.Image, error) {
	preserveDigest := func(o *imgutil.ImageOptions) { o.PreserveDigest = true }
	ops = append([]imgutil.ImageOption{layout.FromBaseImageInstance(from), layout.WithoutLayersWhenSaved(), preserveDigest}, ops...)
	return layout.NewImage(path, ops...)
}
