package layout

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/verified"
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
// mismatch is returned at its end instead of io.EOF.
func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	f, fi, err := openBlob(b.dir, b.digest)
	if err != nil {
		return nil, err
	}
	return &digestReader{f: f, fi: fi, h: sha256.New(), want: b.digest}, nil
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

// digestReader reads a blob file and, at its end, checks its digest; a
// match is recorded (see internal/verified).
type digestReader struct {
	f    *os.File
	fi   os.FileInfo
	h    hash.Hash
	want v1.Hash
}

func (r *digestReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(r.h.Sum(nil))}
		if got != r.want {
			return n, fmt.Errorf("layout blob %s holds content of digest %s: %w", r.want, got, imgutil.ErrInvalidArgument)
		}
		verified.Remember(r.fi, r.want)
	}
	return n, err
}

func (r *digestReader) Close() error { return r.f.Close() }
