package layout_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcr "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

// twoPlatforms is an index of a linux/amd64 and a linux/arm64 image, and
// the arm64 one.
func twoPlatforms(t *testing.T, extra ...v1.Layer) (v1.ImageIndex, v1.Image) {
	t.Helper()
	amd, arm := testhelpers.PlatformImage(t, "amd64"), testhelpers.PlatformImage(t, "arm64")
	if len(extra) > 0 {
		var err error
		arm, err = mutate.AppendLayers(arm, extra...)
		must(t, err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	return idx, arm
}

// SaveIndex makes a layout hold a multi-platform image: index.json names
// the index alone (with its ref name), every blob of every platform is
// there and hashes to its digest, and each platform opens as an image.
func TestSaveIndex(t *testing.T) {
	idx, arm := twoPlatforms(t)
	dir := filepath.Join(t.TempDir(), "multi")
	d, err := layout.SaveIndex(context.Background(), dir, idx, "app:1")
	must(t, err)
	want, err := idx.Digest()
	must(t, err)
	if d != want {
		t.Errorf("SaveIndex returned %s, want the index digest %s", d, want)
	}
	p, err := ggcr.FromPath(dir)
	must(t, err)
	top, err := p.ImageIndex()
	must(t, err)
	im, err := top.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want || !im.Manifests[0].MediaType.IsIndex() || im.Manifests[0].Annotations[layout.ImageRefNameKey] != "app:1" {
		t.Fatalf("index.json lists %+v, want the index %s alone, named app:1", im.Manifests, want)
	}
	saved, err := top.ImageIndex(want)
	must(t, err)
	// Every blob read back from the layout and hashed.
	must(t, validate.Index(saved))

	img, err := layout.NewImage(filepath.Join(t.TempDir(), "app"), imgutil.FromBaseImage(dir), imgutil.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: "arm64"}))
	must(t, err)
	armDigest, err := arm.Digest()
	must(t, err)
	if got, err := img.Digest(); err != nil || got != armDigest {
		t.Errorf("the arm64 platform opens as %s (%v), want %s", got, err, armDigest)
	}
	leftovers(t, dir)
}

// A SaveIndex that fails (a layer cut mid-read, bytes of another digest, a
// cancelled context) leaves the layout as it was: the image saved before
// still named by index.json, no new blob, no partial file; a layout it
// would have created is not there.
func TestSaveIndexFailureLeavesNothing(t *testing.T) {
	good, _ := twoPlatforms(t)
	base, err := random.Layer(64<<10, types.OCILayer)
	must(t, err)
	cases := map[string]struct {
		layer v1.Layer
		ctx   func() context.Context
		is    error
	}{
		"layer cut":   {layer: cutLayer{base}},
		"wrong bytes": {layer: otherBytes{Layer: base}, is: imgutil.ErrInvalidArgument},
		"cancelled": {layer: base, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, is: context.Canceled},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bad, _ := twoPlatforms(t, tc.layer)
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			// Into a new layout: nothing is made.
			fresh := filepath.Join(t.TempDir(), "new")
			_, err := layout.SaveIndex(ctx, fresh, bad, "")
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("SaveIndex into a new layout: %v, want an error (%v)", err, tc.is)
			}
			if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed SaveIndex left the layout it made: %v", err)
			}
			// Into one holding an index: it is kept, whole.
			dir := filepath.Join(t.TempDir(), "kept")
			_, err = layout.SaveIndex(context.Background(), dir, good, "")
			must(t, err)
			before := blobs(t, dir)
			indexJSON, err := os.ReadFile(filepath.Join(dir, "index.json"))
			must(t, err)
			if _, err := layout.SaveIndex(ctx, dir, bad, ""); err == nil {
				t.Fatal("SaveIndex of a bad index succeeded")
			}
			if after := blobs(t, dir); !slices.Equal(before, after) {
				t.Errorf("blobs before %v, after the failed save %v", before, after)
			}
			now, err := os.ReadFile(filepath.Join(dir, "index.json"))
			must(t, err)
			if string(now) != string(indexJSON) {
				t.Errorf("index.json changed by a failed save: %s", now)
			}
			p, err := ggcr.FromPath(dir)
			must(t, err)
			top, err := p.ImageIndex()
			must(t, err)
			must(t, validate.Index(top))
		})
	}
}

// blobs lists the names under dir/blobs/sha256.
func blobs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// leftovers fails on a partial blob left in dir.
func leftovers(t *testing.T, dir string) {
	t.Helper()
	for _, n := range blobs(t, dir) {
		if len(n) != 64 {
			t.Errorf("left in the layout's blobs: %s", n)
		}
	}
}

// cutLayer's compressed bytes end early, with an error.
type cutLayer struct{ v1.Layer }

func (c cutLayer) Compressed() (io.ReadCloser, error) {
	rc, err := c.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 1000), errReader{}), rc}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// otherBytes claims its layer's digest but gives other bytes.
type otherBytes struct{ v1.Layer }

func (o otherBytes) Compressed() (io.ReadCloser, error) {
	other, err := random.Layer(64<<10, types.OCILayer)
	if err != nil {
		return nil, err
	}
	return other.Compressed()
}
