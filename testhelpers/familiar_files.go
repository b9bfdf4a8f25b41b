package testhelpers

// The helpers buildpacks tools' tests already call (the familiar surface of
// the existing library's testhelpers), working offline: tar and layer files.

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	ilayer "github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/layer"
)

// RandString returns n random lower-case letters.
func RandString(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(letters))))
		if err != nil {
			panic(err)
		}
		b[i] = letters[k.Int64()]
	}
	return string(b)
}

// singleFileTar is a tar holding one file at path with content txt.
func singleFileTar(path, txt string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(txt))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write([]byte(txt)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CreateSingleFileTar returns a tar holding one file at path with txt.
func CreateSingleFileTar(path, txt string) (io.Reader, error) {
	b, err := singleFileTar(path, txt)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// CreateSingleFileTarReader is CreateSingleFileTar as a ReadCloser; an
// error shows when it is read.
func CreateSingleFileTarReader(path, txt string) io.ReadCloser {
	b, err := singleFileTar(path, txt)
	if err != nil {
		pr, pw := io.Pipe()
		pw.CloseWithError(err)
		return pr
	}
	return io.NopCloser(bytes.NewReader(b))
}

// CreateSingleFileLayerTar writes, in a new temp file whose path it
// returns, a layer holding one file at layerPath with txt; for osType
// "windows", laid out as a Windows layer (layerPath must be absolute).
func CreateSingleFileLayerTar(layerPath, txt, osType string) (string, error) {
	f, err := os.CreateTemp("", "single-file-layer-*.tar")
	if err != nil {
		return "", err
	}
	defer f.Close()
	type tarWriter interface {
		WriteHeader(*tar.Header) error
		Write([]byte) (int, error)
		Close() error
	}
	var tw tarWriter = tar.NewWriter(f)
	if osType == "windows" {
		tw = layer.NewWindowsWriter(f)
	}
	if err := tw.WriteHeader(&tar.Header{Name: layerPath, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(txt))}); err != nil {
		return "", err
	}
	if _, err := tw.Write([]byte(txt)); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// FileDiffID is "sha256:" and the hex sha256 of the file at path.
func FileDiffID(t *testing.T, path string) string {
	t.Helper()
	d, err := ilayer.FileSHA256(path)
	AssertNil(t, err)
	return d.String()
}

// RandomLayer writes into tmpDir a layer holding one file of random
// content, and returns its path, its diffID and the file's content.
func RandomLayer(t *testing.T, tmpDir string) (path string, sha string, contents []byte) {
	t.Helper()
	id := RandString(12)
	contents = []byte("some-content-" + id)
	b, err := singleFileTar("/new-layer-"+id+".txt", string(contents))
	AssertNil(t, err)
	path = filepath.Join(tmpDir, "layer-"+id+".tar")
	AssertNil(t, os.WriteFile(path, b, 0o644))
	return path, FileDiffID(t, path), contents
}
