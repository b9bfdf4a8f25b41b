package layout_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/imagetest"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

// harness runs the shared Image suite on layouts under one temp dir.
func harness(t *testing.T) imagetest.Harness {
	root := t.TempDir()
	var n atomic.Int64
	fresh := func(*testing.T) string {
		return filepath.Join(root, fmt.Sprintf("image-%d", n.Add(1)))
	}
	return imagetest.Harness{
		NewImage: func(t *testing.T, name string, ops ...imgutil.ImageOption) imgutil.Image {
			img, err := layout.NewImage(name, ops...)
			if err != nil {
				t.Fatalf("NewImage(%s): %v", name, err)
			}
			return img
		},
		FreshName: fresh,
		Store: func(t *testing.T, img v1.Image) string {
			name := fresh(t)
			testhelpers.LayoutPut(t, name, img)
			return name
		},
		Read:            readLayout,
		BaseMediaTypes:  imgutil.OCITypes,
		KeepsMediaTypes: true,
	}
}

func readLayout(t *testing.T, name string) v1.Image {
	t.Helper()
	idx, err := ggcr.ImageIndexFromPath(name)
	if err != nil {
		t.Fatalf("reading layout %s: %v", name, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("layout %s holds %d manifests, want 1", name, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImageSuite(t *testing.T) {
	imagetest.Run(t, harness(t))
}

var _ imagetest.CoreMethods = (*layout.Image)(nil)
