package layer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/imgbridge/imgutil/internal/imgerr"
	"github.com/imgbridge/imgutil/internal/verified"
)

// File is a v1.Layer read from a file on disk, plain or gzip tar. Its diffID
// and uncompressed size come from the one read FromFile makes; the digest of
// a plain file's gzip form is computed only if asked for, once.
type File struct {
	*fileState
	mediaType types.MediaType
}

// fileState is shared by the Files of one file with different media types.
type fileState struct {
	path string
	info Info
	// verify is set when the diffID was given, not read: every full read
	// of the file checks it (see FromFileWithDiffID).
	verify bool
	// caches are those of the image or Store that made the layer.
	caches Caches

	// mu guards the memoized gzip digest of a plain file.
	mu         sync.Mutex
	gzDigest   v1.Hash
	gzSize     int64
	gzComputed bool
}

var _ v1.Layer = (*File)(nil)

// FromFile scans the file at path once and returns it as a layer of
// mediaType (a gzip layer type for the compressed form).
// What it learns goes into caches (those of the image or Store that makes
// it).
func FromFile(path string, mediaType types.MediaType, caches Caches) (*File, error) {
	info, err := ScanFile(path)
	if err != nil {
		return nil, err
	}
	return &File{fileState: &fileState{path: path, info: info, caches: caches}, mediaType: mediaType}, nil
}

// FromFileWithDiffID returns the plain tar file at path as a layer whose
// diffID the caller gave, without reading its content now: only the tar
// headers are checked (CheckHeader), and every full read of the layer
// verifies the diffID as the bytes stream out, failing at the end with an
// error matching imgerr.ErrDiffIDMismatch. So a layer sent to a daemon or
// written to a layout is read once. A gzip file is scanned as FromFile does.
func FromFileWithDiffID(path string, diffID v1.Hash, mediaType types.MediaType, caches Caches) (*File, error) {
	if err := checkRegular(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening layer file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening layer file: %w", err)
	}
	magic := make([]byte, 2)
	if n, _ := io.ReadFull(f, magic); n == 2 && magic[0] == gzipMagic[0] && magic[1] == gzipMagic[1] {
		l, err := FromFile(path, mediaType, caches)
		if err != nil {
			return nil, err
		}
		if l.info.DiffID != diffID {
			return nil, fmt.Errorf("layer file %s has diff ID %s, not %s: %w", path, l.info.DiffID, diffID, imgerr.ErrDiffIDMismatch)
		}
		return l, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading layer file: %w", err)
	}
	// On a file, the tar reader seeks past contents: only headers are read.
	if err := checkEntries(f); err != nil {
		return nil, fmt.Errorf("reading layer file %s: %w", path, err)
	}
	info := Info{DiffID: diffID, Size: fi.Size(), Digest: diffID, FileSize: fi.Size()}
	return &File{fileState: &fileState{path: path, info: info, verify: true, caches: caches}, mediaType: mediaType}, nil
}

// WithMediaType returns the same file as a layer of another media type,
// sharing what is known of it.
func (f *File) WithMediaType(mt types.MediaType) v1.Layer {
	return &File{fileState: f.fileState, mediaType: mt}
}

// Path is the file the layer reads.
func (f *File) Path() string { return f.path }

// Info is what the scan of the file learnt.
func (f *File) Info() Info { return f.info }

// DiffID is the sha256 of the uncompressed tar.
func (f *File) DiffID() (v1.Hash, error) { return f.info.DiffID, nil }

// UncompressedSize is the length of the uncompressed tar.
func (f *File) UncompressedSize() (int64, error) { return f.info.Size, nil }

// MediaType is the layer media type given to FromFile.
func (f *File) MediaType() (types.MediaType, error) { return f.mediaType, nil }

func (f *File) uncompressedType() bool {
	return f.mediaType == types.OCIUncompressedLayer || f.mediaType == types.DockerUncompressedLayer
}

// Uncompressed opens the layer as a plain tar. Every full read checks the
// bytes against the diffID (and size) recorded when the layer was added: a
// file changed since fails at the end with ErrDiffIDMismatch, so no image
// is written whose layer does not hash to its diffID.
func (f *File) Uncompressed() (io.ReadCloser, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("opening layer file: %w", err)
	}
	if !f.info.Gzip {
		return &verifier{r: fh, c: fh, h: sha256.New(), want: f.info.DiffID, size: f.info.Size, path: "layer file " + f.path, what: "diff ID"}, nil
	}
	zr, err := gzip.NewReader(fh)
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("reading layer file %s: %w", f.path, err)
	}
	closer := readCloser{Reader: zr, close: func() error { _ = zr.Close(); return fh.Close() }}
	return &verifier{r: zr, c: closer, h: sha256.New(), want: f.info.DiffID, size: f.info.Size, path: "layer file " + f.path, what: "diff ID"}, nil
}

// Source returns the file when it holds the layer's bytes in the form
// asked for (compressed: the form its media type names) as they are, with
// the sha256 they must have: the file may have changed since it was added,
// so whoever copies it checks what it copied.
func (f *File) Source(compressed bool) (string, v1.Hash, bool) {
	switch {
	case !f.info.Gzip && (!compressed || f.uncompressedType()):
		return f.path, f.info.DiffID, true
	case f.info.Gzip && compressed && !f.uncompressedType():
		return f.path, f.info.Digest, true
	}
	return "", v1.Hash{}, false
}

// Compressed opens the layer in the form its media type names: the file as
// it is when that form matches (checked against the digest recorded when
// the layer was added), else gzip-compressed on the fly.
func (f *File) Compressed() (io.ReadCloser, error) {
	if !f.info.Gzip || f.uncompressedType() {
		if !f.info.Gzip && !f.uncompressedType() {
			rc, err := f.Uncompressed()
			if err != nil {
				return nil, err
			}
			return Gzip(rc), nil
		}
		return f.Uncompressed()
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("opening layer file: %w", err)
	}
	return &verifier{r: fh, c: fh, h: sha256.New(), want: f.info.Digest, size: f.info.FileSize, path: "layer file " + f.path, what: "digest"}, nil
}

// Digest is the sha256 of what Compressed returns.
func (f *File) Digest() (v1.Hash, error) {
	d, _, err := f.compressedSum()
	return d, err
}

// Size is the length of what Compressed returns.
func (f *File) Size() (int64, error) {
	_, n, err := f.compressedSum()
	return n, err
}

func (f *File) compressedSum() (v1.Hash, int64, error) {
	if d, n, ok := f.knownSum(); ok {
		return d, n, nil
	}
	return f.WriteCompressed(io.Discard)
}

func (f *File) knownSum() (v1.Hash, int64, bool) {
	switch {
	case f.uncompressedType():
		return f.info.DiffID, f.info.Size, true
	case f.info.Gzip:
		return f.info.Digest, f.info.FileSize, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gzDigest, f.gzSize, f.gzComputed
}

// KnownDigest returns the digest of the compressed form if it is known
// without compressing the file.
func (f *File) KnownDigest() (v1.Hash, bool) {
	d, _, ok := f.knownSum()
	return d, ok
}

// WriteCompressed writes the compressed form to w and returns its digest
// and size, which are remembered: a layer saved once is never compressed
// again to learn its digest.
func (f *File) WriteCompressed(w io.Writer) (v1.Hash, int64, error) {
	rc, err := f.Compressed()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer rc.Close()
	h := newCountingHash()
	if _, err := io.Copy(io.MultiWriter(w, h), rc); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("compressing layer %s: %w", f.path, err)
	}
	d, n := h.sum()
	f.remember(d, n)
	return d, n, nil
}

// remember records the digest and size of the compressed form, learnt by
// writing or streaming it once.
func (f *File) remember(d v1.Hash, n int64) {
	if _, _, known := f.knownSum(); known {
		return
	}
	f.mu.Lock()
	f.gzDigest, f.gzSize, f.gzComputed = d, n, true
	f.mu.Unlock()
	// Learnt from the bytes, whose diffID was checked as they streamed.
	f.caches.Sums.put(f.info.DiffID, gzipSum{digest: d, size: n})
}

// Records are the records of files checked that the layer's owner keeps
// (see internal/verified): an archive of the file trusts and adds to them.
func (f *File) Records() *verified.Records { return f.caches.Verified }

// Streamed is a layer whose digest may be unknown until its compressed form
// is written once; writers use it to learn the digest while writing.
type Streamed interface {
	v1.Layer
	KnownDigest() (v1.Hash, bool)
	WriteCompressed(w io.Writer) (v1.Hash, int64, error)
}

var _ Streamed = (*File)(nil)

// gzipChunk is the size of the pieces Gzip hands its reader.
const gzipChunk = 256 << 10

// Gzip returns a reader of rc compressed with gzip; closing it closes rc.
// The output is deterministic for a given version of this module: the
// same input gives the same bytes. It uses klauspost/compress's gzip at
// its fastest level (BestSpeed): about twice the speed of the standard
// library's at that level here, for output a few percent larger; the level
// is fixed, so digests stay reproducible.
func Gzip(rc io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		// The compressor writes small pieces; the reader (an upload, a
		// file) gets them in large ones.
		bw := bufio.NewWriterSize(pw, gzipChunk)
		zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
		_, err := io.Copy(zw, rc)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		pw.CloseWithError(err)
	}()
	return readCloser{Reader: pr, close: func() error {
		pr.Close()
		return rc.Close()
	}}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// verifier reads a layer and, at its end, checks it has the diffID (or
// digest) and size recorded for it: a mismatch is returned instead of
// io.EOF.
type verifier struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	n    int64
	want v1.Hash
	size int64
	path string
	what string
	// matched, when set, is told the content matched.
	matched func()
}

// Verifying returns rc reading the same bytes and, at their end, checking
// they have digest want and size bytes: a mismatch is returned instead of
// io.EOF (matching imgerr.ErrDiffIDMismatch, so ErrInvalidArgument too),
// and a match is told to matched (may be nil). name and what (digest, diff
// ID) say what is read, in the error.
func Verifying(rc io.ReadCloser, want v1.Hash, size int64, name, what string, matched func()) io.ReadCloser {
	return &verifier{r: rc, c: rc, h: sha256.New(), want: want, size: size, path: name, what: what, matched: matched}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(v.h.Sum(nil))}
		if got != v.want || v.n != v.size {
			return n, fmt.Errorf("%s has %s %s (%d bytes), not %s (%d bytes): %w",
				v.path, v.what, got, v.n, v.want, v.size, imgerr.ErrDiffIDMismatch)
		}
		if v.matched != nil {
			v.matched()
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.c.Close() }
