package layer

import (
	"errors"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
)

// Lazy returns l as a layer whose compressed digest and size are learnt
// while its compressed form is read, once: until then Digest and Size
// answer stream.ErrNotComputed, which go-containerregistry's registry
// writer takes as "upload this layer as a stream, then ask again", and
// which a manifest waits for. So a new layer pushed to a registry is read
// once and compressed once. A layer that is not a layer file, or whose
// digest is known already, is returned as it is.
func Lazy(l v1.Layer) v1.Layer {
	f, ok := l.(*File)
	if !ok {
		return l
	}
	if _, _, known := f.knownSum(); known {
		return l
	}
	if f.knownFromCache() {
		return l
	}
	return &lazyFile{File: f}
}

// knownFromCache takes the compressed digest from the cache of sums, when
// it has one for the file's diffID; a diffID the caller gave is checked
// against the bytes first (a read, no compression).
func (f *File) knownFromCache() bool {
	s, ok := sums.get(f.info.DiffID)
	if !ok {
		return false
	}
	if f.verify {
		if d, err := fileDiffID(f.path); err != nil || d != f.info.DiffID {
			return false
		}
	}
	f.remember(s.digest, s.size)
	return true
}

// lazyFile is a layer file whose compressed digest is learnt by reading it.
type lazyFile struct{ *File }

func (l *lazyFile) Digest() (v1.Hash, error) {
	if d, _, ok := l.knownSum(); ok {
		return d, nil
	}
	return v1.Hash{}, stream.ErrNotComputed
}

func (l *lazyFile) Size() (int64, error) {
	if _, n, ok := l.knownSum(); ok {
		return n, nil
	}
	return 0, stream.ErrNotComputed
}

// Compressed opens the compressed form; reading it to its end records its
// digest and size (shared with every File of the same file).
func (l *lazyFile) Compressed() (io.ReadCloser, error) {
	rc, err := l.File.Compressed()
	if err != nil {
		return nil, err
	}
	return &recording{rc: rc, h: newCountingHash(), f: l.File}, nil
}

// recording hashes what is read through it and records the sum at the end.
type recording struct {
	rc io.ReadCloser
	h  *countingHash
	f  *File
}

func (r *recording) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	_, _ = r.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		d, size := r.h.sum()
		r.f.remember(d, size)
	}
	return n, err
}

func (r *recording) Close() error { return r.rc.Close() }
