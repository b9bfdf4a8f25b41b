package layout_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

// savedLayout saves an image of one layer into a new layout and returns
// the layout's path and the path of that layer's blob.
func savedLayout(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	img, err := layout.NewImage(dir)
	must(t, err)
	p, _ := testhelpers.RandomLayerFile(t, 64<<10)
	must(t, img.AddLayer(p))
	must(t, img.Save())
	layers, err := img.Layers()
	must(t, err)
	d, err := layers[0].Digest()
	must(t, err)
	return dir, filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

// TestTamperedLayoutExports: a layout whose layer blob is a symbolic link
// out of it, or whose content does not match its digest, is not exported
// (nor saved elsewhere): the error is matchable and no file is left.
func TestTamperedLayoutExports(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, blob string)
		want   []error
	}{
		{"BlobIsASymlinkOut", func(t *testing.T, blob string) {
			fi, err := os.Stat(blob)
			must(t, err)
			secret := filepath.Join(t.TempDir(), "secret")
			must(t, os.WriteFile(secret, make([]byte, fi.Size()), 0o600))
			must(t, os.Remove(blob))
			must(t, os.Symlink(secret, blob))
		}, []error{imgutil.ErrInvalidArgument}},
		{"BlobContentIsNotItsDigest", func(t *testing.T, blob string) {
			b, err := os.ReadFile(blob)
			must(t, err)
			b[len(b)/2] ^= 0xff
			must(t, os.WriteFile(blob, b, 0o644))
		}, []error{imgutil.ErrDiffIDMismatch, imgutil.ErrInvalidArgument}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, blob := savedLayout(t)
			// Once exported, the blob is known good (not hashed again)...
			img, err := layout.NewImage(dir, layout.FromBaseImagePath(dir))
			must(t, err)
			out, err := img.SaveFile()
			must(t, err)
			os.Remove(out)
			// ... until it changes.
			tc.tamper(t, blob)
			img, err = layout.NewImage(dir, layout.FromBaseImagePath(dir))
			must(t, err)
			matches := func(err error) bool {
				for _, w := range tc.want {
					if errors.Is(err, w) {
						return true
					}
				}
				return false
			}
			out, err = img.SaveFile()
			if !matches(err) {
				os.Remove(out)
				t.Errorf("SaveFile = %q, %v; want an error matching %v", out, err, tc.want)
			}
			if left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf(".imgutil-partial-*-%d-*", os.Getpid()))); len(left) > 0 {
				t.Errorf("a refused SaveFile left %v", left)
			}
			// Saved into another layout, from the tampered one as a base.
			must(t, img.SetLabel("edited", "yes"))
			other := filepath.Join(t.TempDir(), "other")
			img, err = layout.NewImage(other, layout.FromBaseImagePath(dir))
			must(t, err)
			if err := img.Save(); !matches(err) {
				t.Errorf("Save from a tampered base = %v, want an error matching %v", err, tc.want)
			}
		})
	}
}

// TestHugeMetadataIsRefused: an index.json, or a manifest blob, far larger
// than any real one is refused before it is read (a sparse file: nothing
// is written to disk, nothing would fit in memory).
func TestHugeMetadataIsRefused(t *testing.T) {
	for _, which := range []string{"index", "manifest"} {
		t.Run(which, func(t *testing.T) {
			dir, _ := savedLayout(t)
			path := filepath.Join(dir, "index.json")
			if which == "manifest" {
				img, err := layout.NewImage(dir, layout.FromBaseImagePath(dir))
				must(t, err)
				d, err := img.Digest()
				must(t, err)
				path = filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
			}
			must(t, os.Truncate(path, 1<<30))
			_, err := layout.NewImage(filepath.Join(t.TempDir(), "x"), layout.FromBaseImagePath(dir))
			if !errors.Is(err, imgutil.ErrInvalidArgument) {
				t.Errorf("a base whose %s is 1 GiB = %v, want ErrInvalidArgument", which, err)
			}
		})
	}
}
