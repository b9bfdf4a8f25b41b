package layer

import (
	"errors"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
	s, ok := f.caches.Sums.get(f.info.DiffID)
	if !ok {
		return false
	}
	if f.verify {
		if d, err := FileSHA256(f.path); err != nil || d != f.info.DiffID {
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
	return &recordingTo{rc: rc, h: newCountingHash(), done: func(s gzipSum) { l.remember(s.digest, s.size) }}, nil
}

// LazyGzip returns l, a layer stored uncompressed (a daemon's), as a gzip
// layer of media type mt whose digest is learnt while it streams (or known
// from sums, which learn it): pushed to a registry, it goes compressed
// like a new layer, read once.
func LazyGzip(l v1.Layer, mt types.MediaType, sums *Sums) (v1.Layer, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	g := &gzipLayer{Layer: l, diffID: diffID, mediaType: mt, sums: sums}
	if s, ok := sums.get(diffID); ok {
		g.sum, g.known = s, true
	}
	return g, nil
}

// gzipLayer is an uncompressed layer shown gzip-compressed.
type gzipLayer struct {
	v1.Layer
	diffID    v1.Hash
	mediaType types.MediaType
	sums      *Sums

	// mu guards sum and known.
	mu    sync.Mutex
	sum   gzipSum
	known bool
}

func (g *gzipLayer) current() (gzipSum, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sum, g.known
}

func (g *gzipLayer) Digest() (v1.Hash, error) {
	if s, ok := g.current(); ok {
		return s.digest, nil
	}
	return v1.Hash{}, stream.ErrNotComputed
}

func (g *gzipLayer) Size() (int64, error) {
	if s, ok := g.current(); ok {
		return s.size, nil
	}
	return 0, stream.ErrNotComputed
}

func (g *gzipLayer) MediaType() (types.MediaType, error) { return g.mediaType, nil }

func (g *gzipLayer) Compressed() (io.ReadCloser, error) {
	rc, err := g.Uncompressed()
	if err != nil {
		return nil, err
	}
	return &recordingTo{rc: Gzip(rc), h: newCountingHash(), done: func(s gzipSum) {
		g.mu.Lock()
		g.sum, g.known = s, true
		g.mu.Unlock()
		g.sums.put(g.diffID, s)
	}}, nil
}

// recordingTo hashes what is read through it and hands the sum to done at
// the end.
type recordingTo struct {
	rc   io.ReadCloser
	h    *countingHash
	done func(gzipSum)
}

func (r *recordingTo) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	_, _ = r.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		d, size := r.h.sum()
		r.done(gzipSum{digest: d, size: size})
	}
	return n, err
}

func (r *recordingTo) Close() error { return r.rc.Close() }
