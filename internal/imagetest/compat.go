package imagetest

import (
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
)

// CoreMethods lists every method that the API contract gives the existing
// library's CNBImageCore; each backend's Image must have them all, so that
// callers compile unchanged. Backends assert it at compile time.
type CoreMethods interface {
	imgutil.Image
	Architecture() (string, error)
	CreatedAt() (time.Time, error)
	GetLayer(diffID string) (io.ReadCloser, error)
	UnderlyingImage() v1.Image
	AddLayerWithHistory(layer v1.Layer, history v1.History) error
	AddOrReuseLayerWithHistory(path string, diffID string, history v1.History) error
	PreviousImageHasLayer(diffID string) (bool, error)
	Rebase(baseTopLayerDiffID string, withNewBase imgutil.Image) error
	MutateConfigFile(withFunc func(c *v1.ConfigFile)) error
	SetCreatedAtAndHistory() error
	SetAnnotations(annotations map[string]string) error
	AnnotateRefName(refName string) error
	OSFeatures() ([]string, error)
	SetOSFeatures(osFeatures []string) error
}
