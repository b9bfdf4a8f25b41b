package testhelpers

import (
	"archive/tar"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgbridge/imgutil/internal/fixture"
	"github.com/imgbridge/imgutil/internal/layer"
)

// LayerFile writes a layer tar holding files (path → content; a path ending
// in "/" is a directory) into t.TempDir and returns its path and diffID.
func LayerFile(t testing.TB, files map[string]string) (path, diffID string) {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	mustDo(t, fixture.Files(tree, files))
	path = filepath.Join(dir, "layer.tar")
	mustDo(t, fixture.LayerFromDir(tree, path))
	info, err := layer.ScanFile(path)
	mustDo(t, err)
	return path, info.DiffID.String()
}

// RandomLayerFile writes a layer tar holding one file of size random bytes
// and returns its path and diffID.
func RandomLayerFile(t testing.TB, size int) (path, diffID string) {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return LayerFile(t, map[string]string{"random/" + rand.Text(): string(b)})
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// EvilLayerFile writes a layer tar with one entry named name (e.g.
// "../escape" or "/abs") and returns its path, for tests of tar safety.
func EvilLayerFile(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "evil.tar")
	f, err := os.Create(path)
	mustDo(t, err)
	tw := tar.NewWriter(f)
	mustDo(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 4}))
	_, err = tw.Write([]byte("evil"))
	mustDo(t, err)
	mustDo(t, tw.Close())
	mustDo(t, f.Close())
	return path
}

// BuildToolLayerFile writes a layer tar as build tools write them: absolute
// entry names (/layers/bp/...), a file holding word, a hard link and a
// symbolic link to it by absolute path. It returns its path and diffID.
func BuildToolLayerFile(t testing.TB, word string) (path, diffID string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "abs.tar")
	f, err := os.Create(path)
	mustDo(t, err)
	tw := tar.NewWriter(f)
	for _, h := range []tar.Header{
		{Name: "/layers/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "/layers/bp/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "/layers/bp/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(word))},
		{Name: "/layers/bp/hard", Typeflag: tar.TypeLink, Linkname: "/layers/bp/f"},
		{Name: "/layers/bp/soft", Typeflag: tar.TypeSymlink, Linkname: "/layers/bp/f"},
	} {
		mustDo(t, tw.WriteHeader(&h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(word))
			mustDo(t, err)
		}
	}
	mustDo(t, tw.Close())
	mustDo(t, f.Close())
	info, err := layer.ScanFile(path)
	mustDo(t, err)
	return path, info.DiffID.String()
}
