package layout

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

// openBlob opens the blob d of the layout dir within it (os.Root: no
// symbolic link leads out of it) and checks it is a regular file.
func openBlob(dir string, d v1.Hash) (*os.File, os.FileInfo, error) {
	rel := filepath.Join("blobs", d.Algorithm, d.Hex)
	f, err := os.OpenInRoot(dir, rel)
	if err != nil {
		return nil, nil, fmt.Errorf("layout blob %s: %w: %w", d, imgutil.ErrInvalidArgument, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("layout blob %s is not a regular file: %w", d, imgutil.ErrInvalidArgument)
	}
	return f, fi, nil
}

// Compressed reads the blob as stored, checked against its digest: a
// mismatch is returned at its end instead of io.EOF; a match is recorded
// (see internal/verified).
func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	f, fi, err := openBlob(b.dir, b.digest)
	if err != nil {
		return nil, err
	}
	return layer.Verifying(f, b.digest, fi.Size(), "layout blob "+b.digest.String(), "digest",
		func() { b.records.Remember(fi, b.digest) }), nil
}

// Uncompressed reads the blob uncompressed (plain or gzip), its stored
// bytes checked against the digest as they are read.
func (b *blobLayer) Uncompressed() (io.ReadCloser, error) {
	mt, err := b.MediaType()
	if err != nil {
		return nil, err
	}
	rc, err := b.Compressed()
	if err != nil {
		return nil, err
	}
	if mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer {
		return rc, nil
	}
	br := bufio.NewReader(rc)
	if magic, _ := br.Peek(2); !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		// Another compression: read as the layout library reads it.
		rc.Close()
		return b.Layer.Uncompressed()
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("layout blob %s: %w", b.digest, err)
	}
	return &gunzipReader{Reader: zr, zr: zr, rc: rc, br: br}, nil
}

// gunzipReader reads a gzip stream; at its end it reads the blob to its
// end too, so that the blob's digest is checked.
type gunzipReader struct {
	io.Reader
	zr *gzip.Reader
	rc io.ReadCloser
	br *bufio.Reader
}

func (g *gunzipReader) Read(p []byte) (int, error) {
	n, err := g.Reader.Read(p)
	if errors.Is(err, io.EOF) {
		if _, derr := io.Copy(io.Discard, g.br); derr != nil {
			return n, derr
		}
	}
	return n, err
}

func (g *gunzipReader) Close() error {
	g.zr.Close()
	return g.rc.Close()
}
