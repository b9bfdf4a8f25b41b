package remote_test

import (
	"crypto/rand"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/imagetest"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

var _ imagetest.CoreMethods = (*remote.Image)(nil)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fresh(reg *testhelpers.Registry) string {
	return reg.Repo("imgutil-test/" + strings.ToLower(rand.Text()[:10]) + ":latest")
}

func put(t *testing.T, reg *testhelpers.Registry, ref string, img v1.Image) {
	t.Helper()
	reg.Put(t, strings.TrimPrefix(ref, reg.Host+"/"), img)
}

func read(t *testing.T, reg *testhelpers.Registry, ref string) v1.Image {
	t.Helper()
	return reg.Get(t, strings.TrimPrefix(ref, reg.Host+"/"))
}

func harness(reg *testhelpers.Registry) imagetest.Harness {
	return imagetest.Harness{
		NewImage: func(t *testing.T, name string, ops ...imgutil.ImageOption) imgutil.Image {
			img, err := remote.NewImage(name, reg.Keychain(), ops...)
			must(t, err)
			return img
		},
		FreshName: func(*testing.T) string { return fresh(reg) },
		Store: func(t *testing.T, img v1.Image) string {
			ref := fresh(reg)
			put(t, reg, ref, img)
			return ref
		},
		Read:            func(t *testing.T, ref string) v1.Image { return read(t, reg, ref) },
		BaseMediaTypes:  imgutil.OCITypes,
		KeepsMediaTypes: true,
	}
}

// TestImageSuite runs the shared suite against a real registry, without
// and with basic authentication.
func TestImageSuite(t *testing.T) {
	t.Run("anonymous", func(t *testing.T) {
		imagetest.Run(t, harness(testhelpers.StartRegistry(t)))
	})
	t.Run("basic-auth", func(t *testing.T) {
		imagetest.Run(t, harness(testhelpers.StartRegistry(t, testhelpers.WithBasicAuth("builder", "s3cret"))))
	})
}
