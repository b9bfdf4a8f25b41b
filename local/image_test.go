package local_test

import (
	"crypto/rand"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/imagetest"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

var _ imagetest.CoreMethods = (*local.Image)(nil)

// freshName returns an image name no test used, removed when the test ends.
func freshName(t *testing.T, cli client.APIClient) string {
	name := "imgutil-test/" + strings.ToLower(rand.Text()[:12]) + ":latest"
	testhelpers.DockerCleanup(t, cli, name)
	return name
}

func newImage(t *testing.T, cli local.DockerClient, name string, ops ...imgutil.ImageOption) *local.Image {
	t.Helper()
	img, err := local.NewImage(name, cli, ops...)
	if err != nil {
		t.Fatalf("NewImage(%s): %v", name, err)
	}
	t.Cleanup(func() {
		if err := img.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return img
}

func harness(t *testing.T, cli *client.Client) imagetest.Harness {
	return imagetest.Harness{
		NewImage: func(t *testing.T, name string, ops ...imgutil.ImageOption) imgutil.Image {
			return newImage(t, cli, name, ops...)
		},
		FreshName: func(t *testing.T) string { return freshName(t, cli) },
		Store: func(t *testing.T, img v1.Image) string {
			name := freshName(t, cli)
			testhelpers.DockerPut(t, cli, name, img)
			return name
		},
		Read: func(t *testing.T, name string) v1.Image {
			return testhelpers.DockerRead(t, cli, name)
		},
		BaseMediaTypes: imgutil.DockerTypes,
	}
}

func TestImageSuite(t *testing.T) {
	cli := testhelpers.DockerClient(t)
	imagetest.Run(t, harness(t, cli))
}
