package layout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/internal/userfile"
	"github.com/imgbridge/imgutil/internal/verified"
)

// parallelLayers is how many layer blobs are written at once.
const parallelLayers = 4

// toWrite is an image to write into a layout. rawManifest is called after
// the layers are written, when every layer digest is known.
type toWrite struct {
	layers      []v1.Layer
	rawConfig   []byte
	mediaType   types.MediaType
	rawManifest func() ([]byte, error)
}

// writer writes blobs into one layout directory and can undo what it wrote.
type writer struct {
	// ctx is looked at before each blob (a blob is written whole: a file
	// copied into it is copied by the kernel, which nothing may wrap).
	ctx context.Context
	dir string
	// records get the blobs written (hashed as they were written).
	records *verified.Records
	// mu guards written.
	mu      sync.Mutex
	written []string
}

// writeLayout makes dir a layout whose index holds only img, annotated with
// annotations (see writeInto).
func writeLayout(ctx context.Context, dir string, img toWrite, withoutLayers bool, annotations map[string]string, records *verified.Records) (desc v1.Descriptor, err error) {
	err = writeInto(ctx, dir, records, func(w *writer) error {
		if !withoutLayers {
			if err := w.writeLayers(img.layers); err != nil {
				return err
			}
		}
		if _, err := w.writeBytes(img.rawConfig); err != nil {
			return fmt.Errorf("writing config: %w", err)
		}
		raw, err := img.rawManifest()
		if err != nil {
			return err
		}
		d, err := w.writeBytes(raw)
		if err != nil {
			return fmt.Errorf("writing manifest: %w", err)
		}
		desc = v1.Descriptor{MediaType: img.mediaType, Size: int64(len(raw)), Digest: d, Annotations: annotations}
		return w.finish(desc)
	})
	return desc, err
}

// writeInto runs write, which writes blobs into the layout dir and, last,
// its index.json (writer.finish). Blobs go each through a temp file
// renamed to its digest; index.json is replaced atomically. On failure
// nothing that was written stays: a dir this call created is removed, new
// blobs too. Once ctx is done the save stops, before the next blob or the
// index.
func writeInto(ctx context.Context, dir string, records *verified.Records, write func(*writer) error) (err error) {
	created, unlock, err := lockLayout(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Saves take turns: a partial blob of a process that is gone (killed
	// mid-save) is removed.
	userfile.SweepStale(filepath.Join(dir, "blobs", "sha256"), blobPartialPrefix)
	w := &writer{ctx: ctx, dir: dir, records: records}
	defer func() {
		if err == nil {
			return
		}
		// Undo only what this save wrote; the directory goes only if this
		// save made it and no image was completed in it (saves into one
		// layout take turns, so none is being written).
		w.undo()
		if _, serr := os.Stat(filepath.Join(dir, "index.json")); created && errors.Is(serr, fs.ErrNotExist) {
			os.RemoveAll(dir)
		}
	}()
	return write(w)
}

// writeLayers writes layers' blobs, a few at once.
func (w *writer) writeLayers(layers []v1.Layer) error {
	g := new(errgroup.Group)
	g.SetLimit(parallelLayers)
	for _, l := range layers {
		g.Go(func() error { return w.writeLayer(l) })
	}
	return g.Wait()
}

// finish makes index.json list desc alone, once ctx is still live.
func (w *writer) finish(desc v1.Descriptor) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{desc}}
	return writeIndexJSON(w.dir, &index)
}

// lockLayout makes dir a layout directory (saying whether it created it)
// and takes its lock (see lockDir, per OS): saves into one layout, in this
// process or another, take turns. A directory removed while waiting (a
// failed save that had made it) is made again.
func lockLayout(dir string) (created bool, unlock func(), err error) {
	for range 8 {
		made, err := prepareDir(dir)
		if err != nil {
			return false, nil, err
		}
		created = created || made
		release, locked, err := lockDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, nil, fmt.Errorf("locking layout %s: %w", dir, err)
		}
		// The lock is on the directory opened; it must still be dir.
		now, err := os.Stat(dir)
		if err == nil && os.SameFile(locked, now) {
			return created, release, nil
		}
		release()
	}
	return false, nil, fmt.Errorf("layout %s keeps being removed while saving", dir)
}

// prepareDir makes dir a layout directory and says whether it created dir.
func prepareDir(dir string) (bool, error) {
	fi, err := os.Stat(dir)
	created := errors.Is(err, fs.ErrNotExist)
	switch {
	case created:
	case err != nil:
		return false, fmt.Errorf("layout %s: %w", dir, err)
	case !fi.IsDir():
		return false, fmt.Errorf("layout path %s is not a directory: %w", dir, imgutil.ErrInvalidArgument)
	default:
		if err := checkLayoutDir(dir); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return false, fmt.Errorf("creating layout %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		if created {
			os.RemoveAll(dir)
		}
		return false, fmt.Errorf("creating layout %s: %w", dir, err)
	}
	return created, nil
}

// checkLayoutDir refuses to turn a directory holding other files into a layout.
func checkLayoutDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	for _, e := range entries {
		switch e.Name() {
		case "oci-layout", "index.json", "blobs":
		default:
			return fmt.Errorf("layout path %s holds %q, not an OCI layout: %w", dir, e.Name(), imgutil.ErrInvalidArgument)
		}
	}
	return nil
}

func (w *writer) blobPath(h v1.Hash) string {
	return filepath.Join(w.dir, "blobs", h.Algorithm, h.Hex)
}

func (w *writer) exists(h v1.Hash) bool {
	_, err := os.Stat(w.blobPath(h))
	return err == nil
}

// writeLayer writes l's compressed form unless the blob is already there.
func (w *writer) writeLayer(l v1.Layer) error {
	if a, ok := l.(interface{ Absent() bool }); ok && a.Absent() {
		// A layer of a sparse layout stays absent here too.
		return nil
	}
	if s, ok := l.(layer.Streamed); ok {
		if d, known := s.KnownDigest(); known && w.exists(d) {
			return nil
		}
		return w.writeStream(func(f io.Writer) (v1.Hash, error) {
			d, _, err := s.WriteCompressed(f)
			return d, err
		})
	}
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("getting layer digest: %w", err)
	}
	if w.exists(d) {
		return nil
	}
	return w.writeStream(func(f io.Writer) (v1.Hash, error) {
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(f, h), rc); err != nil {
			return v1.Hash{}, err
		}
		got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
		if got != d {
			return v1.Hash{}, fmt.Errorf("layer content has digest %s, not %s: %w", got, d, imgutil.ErrInvalidArgument)
		}
		return got, nil
	})
}

// blobPartialPrefix starts the names of blobs being written:
// .partial-<pid>-<random>, in the layout's blobs/sha256.
const blobPartialPrefix = ".partial-"

// writeStream writes a blob through a temp file and renames it to the
// digest that write returns.
func (w *writer) writeStream(write func(io.Writer) (v1.Hash, error)) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	f, err := userfile.CreateTemp(filepath.Join(w.dir, "blobs", "sha256"), userfile.OwnedPattern(blobPartialPrefix))
	if err != nil {
		return fmt.Errorf("writing blob: %w", err)
	}
	tmp := f.Name()
	d, err := write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing blob: %w", err)
	}
	if w.exists(d) {
		return os.Remove(tmp)
	}
	if err := userfile.Place(tmp, w.blobPath(d)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	// Hashed as it was written: an export of it need not hash it again.
	if fi, err := os.Lstat(w.blobPath(d)); err == nil {
		w.records.Remember(fi, d)
	}
	w.mu.Lock()
	w.written = append(w.written, w.blobPath(d))
	w.mu.Unlock()
	return nil
}

// writeBytes writes b as a blob and returns its digest.
func (w *writer) writeBytes(b []byte) (v1.Hash, error) {
	d := sha256Of(b)
	if w.exists(d) {
		return d, nil
	}
	return d, w.writeStream(func(f io.Writer) (v1.Hash, error) {
		_, err := f.Write(b)
		return d, err
	})
}

// undo removes the blobs this writer added.
func (w *writer) undo() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.written {
		os.Remove(p)
	}
	w.written = nil
}

// writeIndexJSON replaces dir/index.json atomically.
func writeIndexJSON(dir string, index *v1.IndexManifest) error {
	raw, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("encoding index: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "index.json"), raw)
}

// writeFileAtomic writes data to a temp file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	if err := userfile.WriteAtomic(path, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// sha256Of is the digest of b.
func sha256Of(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
