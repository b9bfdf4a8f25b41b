package testhelpers

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// LayoutPut writes img as the only image of a new OCI layout at path (no
// library code involved).
func LayoutPut(t testing.TB, path string, img v1.Image) {
	t.Helper()
	p, err := layout.Write(path, empty.Index)
	mustDo(t, err)
	mustDo(t, p.AppendImage(img))
}
