package testhelpers

import (
	"bytes"
	"os"
	"path/filepath"
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

// ReadImageIndex opens the index of the OCI layout at path.
func ReadImageIndex(t *testing.T, path string) v1.ImageIndex {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(path)
	AssertNil(t, err)
	return idx
}

// ReadIndexManifest reads index.json of the OCI layout at path.
func ReadIndexManifest(t *testing.T, path string) *v1.IndexManifest {
	t.Helper()
	m, err := ReadImageIndex(t, path).IndexManifest()
	AssertNil(t, err)
	return m
}

func readBlob(t *testing.T, path string, digest v1.Hash) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(path, "blobs", digest.Algorithm, digest.Hex))
	AssertNil(t, err)
	return b
}

// ReadManifest reads the manifest blob digest of the OCI layout at path.
func ReadManifest(t *testing.T, digest v1.Hash, path string) *v1.Manifest {
	t.Helper()
	m, err := v1.ParseManifest(bytes.NewReader(readBlob(t, path, digest)))
	AssertNil(t, err)
	return m
}

// ReadConfigFile reads the config of manifest from the OCI layout at path.
func ReadConfigFile(t *testing.T, manifest *v1.Manifest, path string) *v1.ConfigFile {
	t.Helper()
	cfg, err := v1.ParseConfigFile(bytes.NewReader(readBlob(t, path, manifest.Config.Digest)))
	AssertNil(t, err)
	return cfg
}

// ReadManifestAndConfigFile reads the first manifest of the OCI layout at
// path and its config.
func ReadManifestAndConfigFile(t *testing.T, path string) (*v1.Manifest, *v1.ConfigFile) {
	t.Helper()
	idx := ReadIndexManifest(t, path)
	if len(idx.Manifests) == 0 {
		t.Fatalf("layout %s holds no manifest", path)
	}
	m := ReadManifest(t, idx.Manifests[0].Digest, path)
	return m, ReadConfigFile(t, m, path)
}
