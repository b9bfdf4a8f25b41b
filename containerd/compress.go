package containerd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

// Compression is how a save stores the layers it adds (those of base and
// previous images, and layers from a registry or a layout, keep the form
// they are stored in).
type Compression string

// Compressions.
const (
	// Gzip is the default: what `ctr images push` and `nerdctl push`
	// send is then what registries expect. A layer's gzip digest is kept
	// (the user cache, as the remote backend keeps it), so a layer saved
	// again in a later build is not compressed again. Whatever the
	// compression, a form an earlier save stored (labelled with the
	// layer's diffID, containerd.io/uncompressed, and with the compressor
	// that made it) is taken as it is stored.
	Gzip Compression = "gzip"
	// Zstd needs an OCI image (a Docker manifest has no zstd layers).
	Zstd Compression = "zstd"
	// Uncompressed stores the layer as it was added: nothing is
	// compressed, its digest is its diffID.
	Uncompressed Compression = "uncompressed"
)

// WithCompression sets how a save stores the layers it adds (default
// Gzip).
func WithCompression(c Compression) imgutil.ImageOption {
	return option(fmt.Sprintf("compression %q", c), func(o *options) { o.compression = c })
}

// compressedType is the media type of a layer in compression c, in a
// Docker manifest (docker) or an OCI one.
func compressedType(c Compression, docker bool) (types.MediaType, error) {
	switch {
	case c == Gzip && docker:
		return types.DockerLayer, nil
	case c == Gzip:
		return types.OCILayer, nil
	case c == Zstd && !docker:
		return types.OCILayerZStd, nil
	case c == Zstd:
		return "", fmt.Errorf("zstd layers need an OCI image; this one has a Docker manifest (imgutil.WithMediaTypes(imgutil.OCITypes)): %w", imgutil.ErrInvalidArgument)
	}
	return "", fmt.Errorf("compression %q: %w", c, imgutil.ErrInvalidArgument)
}

// uncompressedType reports whether mt is a plain tar layer.
func uncompressedType(mt types.MediaType) bool {
	return mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer
}

// compressedBlob is a layer to store compressed: its descriptor, and
// written, whether it is in the content store already (compressed there
// to learn its digest).
type compressedBlob struct {
	desc    v1.Descriptor
	written bool
}

// compress makes the compressed blob of the new layer l (plain descriptor
// plain): when its gzip digest is known it is only described (written
// later, if the store lacks it); else it is compressed once, straight into
// the content store under ctx's lease, and its digest remembered.
func (i *Image) compress(ctx context.Context, l v1.Layer, plain v1.Descriptor, docker bool, stored []content.Info) (compressedBlob, error) {
	mt, err := compressedType(i.compression, docker)
	if err != nil {
		return compressedBlob{}, err
	}
	if i.compression == Gzip {
		if d, n, ok := i.sums.Get(plain.Digest); ok {
			return compressedBlob{desc: v1.Descriptor{MediaType: mt, Digest: d, Size: n}}, nil
		}
	}
	if d, ok := i.takeStored(ctx, plain.Digest, stored); ok {
		// Not put in the sums: they name what Gzip makes of the layer
		// (a layer described by them is compressed again when a store
		// lacks it), and the stored form, of the same compressor, may be
		// of another level or version.
		d.MediaType = mt
		return compressedBlob{desc: d, written: true}, nil
	}
	cs := i.client.ContentStore()
	ref := "imgutil-" + string(i.compression) + "-" + plain.Digest.Hex
	w, err := content.OpenWriter(ctx, cs, content.WithRef(ref))
	if err != nil {
		return compressedBlob{}, fmt.Errorf("writing layer %s: %w", plain.Digest, storeError(err))
	}
	committed := false
	defer func() {
		// Aborted before the ref is let go: another save of the layer,
		// waiting for the ref, then starts an ingest of its own.
		if !committed {
			_ = cs.Abort(context.WithoutCancel(ctx), ref)
		}
		_ = w.Close()
	}()
	// An ingest left by a writer that died is started over.
	if err := w.Truncate(0); err != nil {
		return compressedBlob{}, fmt.Errorf("writing layer %s: %w", plain.Digest, storeError(err))
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return compressedBlob{}, fmt.Errorf("opening layer %s: %w", plain.Digest, err)
	}
	if _, ok := l.(*layer.File); !ok {
		// A layer file checks its diffID as it is read; another layer (of
		// a daemon image) is checked here: its compressed digest is
		// remembered under its diffID.
		rc = layer.Verifying(rc, plain.Digest, plain.Size, "layer "+plain.Digest.String(), "diff ID", nil)
	}
	defer rc.Close()
	h := &countingHash{h: sha256.New()}
	out := io.MultiWriter(w, h)
	if i.compression == Gzip {
		zr := layer.Gzip(io.NopCloser(rc))
		_, err = io.Copy(out, zr)
		_ = zr.Close()
	} else {
		err = writeZstd(out, rc)
	}
	if err != nil {
		return compressedBlob{}, fmt.Errorf("compressing layer %s: %w", plain.Digest, err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.h.Sum(nil))}
	labels := i.formLabels(plain.Digest)
	switch err := w.Commit(ctx, h.n, digest.Digest(d.String()), content.WithLabels(labels)); {
	case err == nil:
		committed = true
	case cerrdefs.IsAlreadyExists(err):
		// Stored already (by another save): held by this save's lease,
		// and labelled for the next save that looks for it.
		if err := i.lease(ctx, d.String()); err != nil {
			return compressedBlob{}, err
		}
		_, _ = cs.Update(ctx, content.Info{Digest: digest.Digest(d.String()), Labels: labels}, "labels."+uncompressedLabel, "labels."+compressorLabel)
	default:
		return compressedBlob{}, fmt.Errorf("writing layer %s: %w", plain.Digest, commitError(err))
	}
	if i.compression == Gzip {
		i.sums.Put(plain.Digest, d, h.n)
	}
	return compressedBlob{desc: v1.Descriptor{MediaType: mt, Digest: d, Size: h.n}, written: true}, nil
}

// uncompressedLabel names, on a compressed layer blob, its diffID: what
// containerd's unpacker writes on every layer it applies, and what a save
// writes on the compressed blobs it makes.
const uncompressedLabel = "containerd.io/uncompressed"

// compressorLabel names, on a compressed layer blob a save made, the
// compressor that made it (layer.CompressorID).
const compressorLabel = "io.imgbridge.imgutil.compressor"

// compressorOf names the compressor of c ("": none, or it cannot be
// named).
func compressorOf(c Compression) string {
	switch c {
	case Gzip:
		return layer.GzipCompressor()
	case Zstd:
		return zstdCompressor()
	}
	return ""
}

var zstdCompressor = sync.OnceValue(func() string { return layer.CompressorID("klauspost-zstd", writeZstd) })

// formLabels are the labels of the compressed form of the layer diffID
// that the save's compressor makes.
func (i *Image) formLabels(diffID v1.Hash) map[string]string {
	labels := map[string]string{uncompressedLabel: diffID.String()}
	if id := compressorOf(i.compression); id != "" {
		labels[compressorLabel] = id
	}
	return labels
}

// storedForms lists, by diffID, the blobs of the namespace that are the
// layers diffIDs as the save's compressor makes them (labelled so by an
// earlier save): one walk of the content store for the whole save. Only
// this compressor's forms are taken, so that an image's digest does not
// depend on what else the namespace holds (another tool's form of a
// layer). Any failure only costs a compression.
func (i *Image) storedForms(ctx context.Context, diffIDs []v1.Hash) map[v1.Hash][]content.Info {
	id := compressorOf(i.compression)
	if len(diffIDs) == 0 || id == "" {
		return nil
	}
	filters := make([]string, len(diffIDs))
	for j, d := range diffIDs {
		filters[j] = "labels." + strconv.Quote(uncompressedLabel) + "==" + strconv.Quote(d.String()) +
			",labels." + strconv.Quote(compressorLabel) + "==" + strconv.Quote(id)
	}
	found := map[v1.Hash][]content.Info{}
	err := i.client.ContentStore().Walk(ctx, func(info content.Info) error {
		if d, err := v1.NewHash(info.Labels[uncompressedLabel]); err == nil {
			found[d] = append(found[d], info)
		}
		return nil
	}, filters...)
	if err != nil {
		return nil
	}
	return found
}

// takeStored takes one of stored (storedForms' for the layer diffID) that
// is still there and is compressed as the save compresses, held by ctx's
// lease first.
func (i *Image) takeStored(ctx context.Context, diffID v1.Hash, stored []content.Info) (v1.Descriptor, bool) {
	magic := []byte{0x1f, 0x8b} // gzip
	if i.compression == Zstd {
		magic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	}
	cs := i.client.ContentStore()
	for _, info := range stored {
		if info.Digest.String() == diffID.String() || info.Size <= int64(len(magic)) || !startsWith(ctx, cs, info, magic) {
			continue
		}
		// Held, then checked: garbage collection may have taken it
		// since the walk.
		if i.lease(ctx, info.Digest.String()) != nil {
			continue
		}
		if _, err := cs.Info(ctx, info.Digest); err != nil {
			continue
		}
		h, err := v1.NewHash(info.Digest.String())
		if err != nil {
			continue
		}
		return v1.Descriptor{Digest: h, Size: info.Size}, true
	}
	return v1.Descriptor{}, false
}

// startsWith reports whether the blob info starts with magic.
func startsWith(ctx context.Context, cs content.Store, info content.Info, magic []byte) bool {
	ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: info.Digest, Size: info.Size})
	if err != nil {
		return false
	}
	defer ra.Close()
	b := make([]byte, len(magic))
	n, err := ra.ReadAt(b, 0)
	return n == len(b) && (err == nil || errors.Is(err, io.EOF)) && bytes.Equal(b, magic)
}

// openCompressed opens the compressed form of l, as compress made it.
func (i *Image) openCompressed(l v1.Layer) (io.ReadCloser, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	// Only gzip forms are described without being written (see compress).
	return layer.Gzip(rc), nil
}

// writeZstd writes r compressed with zstd (klauspost/compress, default
// level, one goroutine: the same bytes for the same input) to w.
func writeZstd(w io.Writer, r io.Reader) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, r); err != nil {
		_ = zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// countingHash hashes what is written and counts it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// newLayer reports whether d is a layer a save compresses: plain, and not
// one of the images opened.
func (i *Image) newLayer(d v1.Descriptor) bool {
	return uncompressedType(d.MediaType) && !i.openedHas(d.Digest)
}

// sumKnown reports whether the gzip form of the layer diffID is known
// (and so need not be looked up in the store).
func (i *Image) sumKnown(diffID v1.Hash) bool {
	if i.compression != Gzip {
		return false
	}
	_, _, ok := i.sums.Get(diffID)
	return ok
}
