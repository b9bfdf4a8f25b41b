package testhelpers

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// emptyBlob is the digest of zero bytes: a non-empty layer described by it
// is a malformed image.
const emptyBlob = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// CheckImage fails the test unless img is well-formed: validate.Image passes
// (every blob matches its digest and diffID), and no layer descriptor points
// at the empty blob.
func CheckImage(t testing.TB, img v1.Image) {
	t.Helper()
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatalf("reading manifest: %v", err)
	}
	for i, l := range m.Layers {
		if l.Digest.String() == emptyBlob {
			t.Fatalf("layer %d is described by the empty blob %s", i, emptyBlob)
		}
	}
}

// DiffIDs returns the diffIDs of img's config as strings.
func DiffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	out := make([]string, len(cfg.RootFS.DiffIDs))
	for i, d := range cfg.RootFS.DiffIDs {
		out[i] = d.String()
	}
	return out
}
