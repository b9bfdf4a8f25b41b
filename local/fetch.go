package local

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
)

// fetcher reads layers of daemon images into a temp directory, each layer
// file once, with one streamed ImageSave per image per request.
type fetcher struct {
	client DockerClient
	// saveOpts are the options of every ImageSave (a platform, where the
	// daemon takes one).
	saveOpts func(ctx context.Context, imageID string) []client.ImageSaveOption
	// reporter gives the progress function of downloads (nil for none).
	reporter func() func(item string, done, total int64)

	// mu guards the fields below (not the downloads themselves).
	mu sync.Mutex
	// dir is created for downloads and removed by close (with unlinked
	// layers, as soon as no download runs).
	dir    string
	closed bool
	// downloading counts the downloads writing into dir.
	downloading int
	// files are the layer files held, by diffID.
	files map[v1.Hash]layerFile
	// failed remembers a failed download per image, returned again.
	failed map[string]error
	// imageLocks serializes downloads of one image: a token in the
	// channel is held by the download under way (waiting for it honours
	// each waiter's context).
	imageLocks map[string]chan struct{}
	// wants are the layers asked for, per image, not held yet: a running
	// download of the image takes any that its stream still carries.
	wants map[string]map[v1.Hash]bool
	// configs are stored configs kept, by image; wantConfig the digests
	// (hex) of those asked for and not kept yet.
	configs    map[string][]byte
	wantConfig map[string]string
}

type layerFile struct {
	path string
	size int64
	// file, when set, holds the layer's only link: the file was unlinked
	// once complete, and path reopens it through /proc/self/fd. The kernel
	// frees it when the process ends, Close or not: a process that never
	// calls Close (as callers of the existing library do not) leaves
	// nothing on disk.
	file *os.File
}

// unlinkLayers says layer files are kept open and unlinked (Linux, with
// /proc): see layerFile.file. Elsewhere they stay in the directory until
// Close, or until a later process sweeps it.
var unlinkLayers = func() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	fi, err := os.Stat("/proc/self/fd")
	return err == nil && fi.IsDir()
}()

func newFetcher(c DockerClient, saveOpts func(context.Context, string) []client.ImageSaveOption, reporter func() func(string, int64, int64)) *fetcher {
	return &fetcher{client: c, saveOpts: saveOpts, reporter: reporter, files: map[v1.Hash]layerFile{}, failed: map[string]error{},
		imageLocks: map[string]chan struct{}{}, wants: map[string]map[v1.Hash]bool{},
		configs: map[string][]byte{}, wantConfig: map[string]string{}}
}

// errStoreClosed is returned by a fetch after close.
var errStoreClosed = errors.New("local store is closed")

// file returns the layer file for diffID if it is held.
func (f *fetcher) file(diffID v1.Hash) (layerFile, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lf, ok := f.files[diffID]
	return lf, ok
}

func (f *fetcher) imageLock(imageID string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.imageLocks[imageID]
	if !ok {
		l = make(chan struct{}, 1)
		f.imageLocks[imageID] = l
	}
	return l
}

// fetch makes sure the layers with diffIDs of the daemon image imageID are
// held, reading them with one ImageSave of that image. allIDs are every
// diffID of the image (to skip the others without reading them). A failed
// download is remembered and returned to every later call for the image.
//
// stored maps the blob digests the image is stored with to diffIDs, when
// known (the containerd store keeps compressed blobs): blobs of unwanted
// layers are then skipped without being read.
//
// probe, when not nil, loads an image of the first n layers of the image
// and returns its name and nonce (see Store.probeImage): when every layer wanted
// lies in the image's lower three quarters, that image is read instead.
func (f *fetcher) fetch(ctx context.Context, imageID string, allIDs []v1.Hash, h hints, diffIDs ...v1.Hash) error {
	// Say what is wanted before waiting: a download of the image already
	// running takes it too, if its stream has not passed it yet.
	f.mu.Lock()
	if err := f.failed[imageID]; err != nil {
		f.mu.Unlock()
		return err
	}
	_, haveConfig := f.configs[imageID]
	if h.config != "" && !haveConfig {
		f.wantConfig[imageID] = h.config
	}
	for _, d := range diffIDs {
		if _, ok := f.files[d]; !ok {
			if f.wants[imageID] == nil {
				f.wants[imageID] = map[v1.Hash]bool{}
			}
			f.wants[imageID][d] = true
		}
	}
	f.mu.Unlock()

	// A download of the image under way is waited for as long as the
	// caller's context allows: each caller's deadline holds.
	lock := f.imageLock(imageID)
	select {
	case lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a read of image %s: %w", imageID, ctx.Err())
	}
	defer func() { <-lock }()

	f.mu.Lock()
	if err := f.failed[imageID]; err != nil {
		f.mu.Unlock()
		return err
	}
	if f.closed {
		f.mu.Unlock()
		return errStoreClosed
	}
	if _, ok := f.configs[imageID]; f.heldLocked(diffIDs) && (ok || h.config == "") {
		f.mu.Unlock()
		return nil
	}
	if f.dir == "" {
		dir, err := layerDir()
		if err != nil {
			f.mu.Unlock()
			return err
		}
		f.dir = dir
	}
	dir := f.dir
	f.downloading++
	last := -1
	for i, d := range allIDs {
		if f.wants[imageID][d] || slices.Contains(diffIDs, d) {
			last = i
		}
	}
	f.mu.Unlock()

	src := source{name: imageID, ids: allIDs, manifest: h.manifest, learnt: h.learnt}
	if h.probe != nil && h.config == "" && probeWorthIt(last, len(allIDs)) {
		// A failed probe costs nothing but the try: the image is read.
		if name, nonce, release, err := h.probe(ctx, last+1); err == nil {
			defer release()
			src = source{name: name, nonce: nonce, ids: allIDs[:last+1]}
		}
	}
	strangers, err := f.download(ctx, dir, src, imageID, h.stored)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.wantConfig, imageID)
	if f.downloading--; f.downloading == 0 && unlinkLayers && f.dir != "" {
		// Nothing is written there now, and kept layers are unlinked:
		// the (empty) directory goes too.
		if os.Remove(f.dir) == nil {
			f.dir = ""
		}
	}
	if err == nil && !f.heldLocked(diffIDs) {
		for _, d := range diffIDs {
			if _, ok := f.files[d]; !ok {
				err = fmt.Errorf("the daemon's archive lacks it: %w", imgutil.ErrLayerNotFound{DiffID: d.String()})
				if strangers > 0 {
					// It held layers that are none of the image's: one of
					// them should have been this one.
					err = fmt.Errorf("layer %s: the daemon's archive holds %d layers that are none of the image's: %w",
						d, strangers, imgutil.ErrDiffIDMismatch)
				}
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("reading layers of image %s from the daemon: %w", imageID, err)
		if ctx.Err() == nil {
			// Every caller waiting for this image gets the same error.
			f.failed[imageID] = err
		}
		for _, d := range diffIDs {
			delete(f.wants[imageID], d)
		}
		return err
	}
	return nil
}

func (f *fetcher) heldLocked(diffIDs []v1.Hash) bool {
	for _, d := range diffIDs {
		if _, ok := f.files[d]; !ok {
			return false
		}
	}
	return true
}

// wanted reports whether layer d of imageID is asked for and not held.
func (f *fetcher) wanted(imageID string, d v1.Hash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wants[imageID][d]
}

// keep records a layer file read for imageID; false when the fetcher was
// closed meanwhile (the file is then removed).
func (f *fetcher) keep(imageID string, d v1.Hash, lf layerFile) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.wants[imageID], d)
	if f.closed {
		if lf.file != nil {
			lf.file.Close()
		}
		os.Remove(lf.path)
		return false
	}
	f.files[d] = lf
	return true
}

// onlyWants reports whether d is the one layer of imageID still wanted.
func (f *fetcher) onlyWants(imageID string, d v1.Hash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.wants[imageID]
	return len(w) == 1 && w[d]
}

// done reports whether nothing more is wanted of imageID.
func (f *fetcher) done(imageID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.wants[imageID]) == 0
}

// hints tell a fetch what is known of the image and how it may be read.
type hints struct {
	// stored maps the blob digests the image is stored with to diffIDs.
	stored map[string]v1.Hash
	// probe loads a probe image of the image's first layers (nil: none).
	probe prober
	// manifest and learnt: see source.
	manifest v1.Hash
	learnt   func([]byte)
	// config, when set, is the hex digest of the image's stored config,
	// which the fetch then also keeps (see config).
	config string
}

// config returns the stored config of imageID, if a fetch kept it.
func (f *fetcher) config(imageID string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, ok := f.configs[imageID]
	return raw, ok
}

// needsConfig returns the config digest hex a download of imageID must
// still find.
func (f *fetcher) needsConfig(imageID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wantConfig[imageID]
}

func (f *fetcher) keepConfig(imageID string, raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configs[imageID] = raw
	delete(f.wantConfig, imageID)
}

// prober loads a probe image of an image's first n layers (see
// Store.probeImage).
type prober func(ctx context.Context, n int) (name, nonce string, release func(), err error)

// source is the image a download reads: the image itself, or a probe
// image of its lower layers, whose nonce marks its top layer's legacy json.
type source struct {
	name, nonce string
	// ids are the diffIDs of the image read.
	ids []v1.Hash
	// manifest, when not zero, is the digest of the manifest the image is
	// stored with (the containerd store): its blob, met in the stream,
	// names every layer blob after it, which is then skipped unread
	// unless wanted; learnt passes it on (to the Store's cache).
	manifest v1.Hash
	learnt   func(raw []byte)
}

// download streams ImageSave of src (imageID, or a probe image of its
// lower layers) and keeps the layers wanted of imageID (the want set may
// grow while the stream runs), reading no more once nothing more is
// wanted (closing the stream then reads the rest: see serialClient).
//
// It returns how many layers the archive held that are none of the
// image's (their content has another diffID).
func (f *fetcher) download(ctx context.Context, dir string, src source, imageID string, stored map[string]v1.Hash) (strangers int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	allIDs := src.ids
	rc, err := f.client.ImageSave(ctx, []string{src.name}, f.saveOpts(ctx, imageID)...)
	if err != nil {
		return 0, daemonError("saving image", err)
	}
	defer rc.Close()
	known := map[string]bool{}
	for _, d := range allIDs {
		known[d.Hex] = true
	}
	tr := tar.NewReader(rc)
	// top is the legacy directory of the probe image's top layer, once seen.
	var top string
	for !f.done(imageID) || f.needsConfig(imageID) != "" {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return strangers, nil
		}
		if err != nil {
			return strangers, fmt.Errorf("reading image archive: %w", err)
		}
		if src.nonce != "" && hdr.Typeflag == tar.TypeReg && path.Base(hdr.Name) == "json" && hdr.Size < 1<<20 {
			// A legacy archive's layer directory: its json, before its
			// layer.tar, holds the image config only for the top layer.
			raw, err := io.ReadAll(tr)
			if err != nil {
				return strangers, fmt.Errorf("reading %s: %w", hdr.Name, err)
			}
			if bytes.Contains(raw, []byte(src.nonce)) {
				top = path.Dir(hdr.Name)
			}
			continue
		}
		if c := f.needsConfig(imageID); c != "" && hdr.Typeflag == tar.TypeReg && hdr.Size < maxManifestSize &&
			(hdr.Name == c+".json" || hdr.Name == "blobs/sha256/"+c) {
			raw, err := readBlob(tr, v1.Hash{Algorithm: "sha256", Hex: c})
			if err != nil && !errors.Is(err, errBlobMismatch) {
				return strangers, fmt.Errorf("reading %s: %w", hdr.Name, err)
			}
			if err == nil {
				f.keepConfig(imageID, raw)
			}
			continue
		}
		if stored == nil && src.manifest.Hex != "" && hdr.Name == "blobs/sha256/"+src.manifest.Hex && hdr.Size < maxManifestSize {
			if m, raw, ok := readManifest(tr, src.manifest); ok && len(m.Layers) == len(allIDs) {
				stored = map[string]v1.Hash{}
				for i, l := range m.Layers {
					stored[l.Digest.Hex] = allIDs[i]
				}
				if src.learnt != nil {
					src.learnt(raw)
				}
			}
			continue
		}
		if hdr.Typeflag != tar.TypeReg || !maybeLayer(hdr) {
			continue
		}
		if src.nonce != "" && path.Base(hdr.Name) == "layer.tar" {
			if d := src.ids[len(src.ids)-1]; path.Dir(hdr.Name) == top {
				if !f.wanted(imageID, d) {
					continue
				}
			} else if f.onlyWants(imageID, d) {
				continue // a lower layer, when only the top one is wanted: never read
			}
		}
		// expect is the diffID the entry's name says it holds, if it says.
		var expect v1.Hash
		base := filepath.Base(hdr.Name)
		if strings.HasPrefix(hdr.Name, "blobs/sha256/") {
			d, named := v1.Hash{Algorithm: "sha256", Hex: base}, known[base]
			if diffID, ok := stored[base]; ok {
				d, named = diffID, true
			}
			if named && !f.wanted(imageID, d) {
				continue // a layer of the image nobody needs: never read
			}
			if named {
				expect = d
			}
		}
		if hex, ok := podmanLayer(hdr.Name); ok && known[hex] {
			expect = v1.Hash{Algorithm: "sha256", Hex: hex}
			if !f.wanted(imageID, expect) {
				continue // Podman names layers by diffID: an unwanted one is never read
			}
		}
		src := archive.ReportingReader(tr, hdr.Name, hdr.Size, f.reporter())
		d, lf, keep, err := spool(src, dir, func(d v1.Hash) bool { return f.wanted(imageID, d) })
		if err == nil && d.Hex != "" && !known[d.Hex] {
			strangers++
		}
		if err != nil && expect.Hex != "" && corrupt(err) {
			return strangers, fmt.Errorf("%s of the daemon's archive should be layer %s, but does not decompress: %w: %w", hdr.Name, expect, imgutil.ErrDiffIDMismatch, err)
		}
		if err == nil && expect.Hex != "" && d != expect {
			if keep {
				f.discard(lf)
			}
			return strangers, fmt.Errorf("%s of the daemon's archive should be layer %s, but its content is %s: %w", hdr.Name, expect, d, imgutil.ErrDiffIDMismatch)
		}
		if err != nil {
			return strangers, fmt.Errorf("reading %s: %w", hdr.Name, err)
		}
		if keep {
			f.keep(imageID, d, lf)
		}
	}
	return strangers, nil
}

// corrupt reports whether err says compressed bytes are not what they
// should be (rather than that they could not be read).
func corrupt(err error) bool {
	var ce flate.CorruptInputError
	return errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &ce)
}

// readManifest reads the manifest blob r and checks it against digest.
func readManifest(r io.Reader, digest v1.Hash) (*v1.Manifest, []byte, bool) {
	raw, err := readBlob(r, digest)
	if err != nil {
		return nil, nil, false
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	return m, raw, err == nil
}

// maybeLayer reports whether an archive entry may hold a layer: a legacy
// <id>/layer.tar or a blob (spool tells layers from JSON by their first
// bytes, before writing anything).
func maybeLayer(hdr *tar.Header) bool {
	_, podman := podmanLayer(hdr.Name)
	return podman || strings.HasSuffix(hdr.Name, "/layer.tar") || strings.HasPrefix(hdr.Name, "blobs/")
}

// podmanLayer reports whether name is a layer as Podman's save writes it:
// <diffID hex>.tar at the archive's root (its v1 directories' layer.tar
// are symbolic links to it), and returns the hex.
func podmanLayer(name string) (string, bool) {
	hex, ok := strings.CutSuffix(strings.TrimPrefix(name, "./"), ".tar")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", false
	}
	return hex, true
}

// spool writes the layer r (plain or gzip tar) uncompressed into dir while
// hashing it, and keeps it, named by its diffID, when want has it.
func spool(r io.Reader, dir string, want func(v1.Hash) bool) (v1.Hash, layerFile, bool, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return v1.Hash{}, layerFile{}, false, err
		}
		defer zr.Close()
		src = zr
	} else if head, _ := br.Peek(262); len(head) < 262 || string(head[257:262]) != "ustar" {
		return v1.Hash{}, layerFile{}, false, nil // JSON or other metadata
	}
	tmp, err := os.CreateTemp(dir, ".partial-*")
	if err != nil {
		return v1.Hash{}, layerFile{}, false, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if err != nil || !want(d) {
		tmp.Close()
		os.Remove(tmp.Name())
		return d, layerFile{}, false, err
	}
	if unlinkLayers {
		// Kept open, unlinked: see layerFile.file.
		if err := os.Remove(tmp.Name()); err != nil {
			tmp.Close()
			return d, layerFile{}, false, err
		}
		return d, layerFile{path: fmt.Sprintf("/proc/self/fd/%d", tmp.Fd()), size: n, file: tmp}, true, nil
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return d, layerFile{}, false, err
	}
	final := filepath.Join(dir, d.Hex)
	if err := os.Rename(tmp.Name(), final); err != nil {
		os.Remove(tmp.Name())
		return d, layerFile{}, false, err
	}
	return d, layerFile{path: final, size: n}, true, nil
}

// discard removes a layer file spooled but not kept.
func (f *fetcher) discard(lf layerFile) {
	if lf.file != nil {
		lf.file.Close()
	}
	if !strings.HasPrefix(lf.path, "/proc/self/fd/") {
		os.Remove(lf.path)
	}
}

// close removes every layer file and the directory; later fetches fail.
func (f *fetcher) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, lf := range f.files {
		if lf.file != nil {
			lf.file.Close()
		}
	}
	f.files = map[v1.Hash]layerFile{}
	if f.dir == "" {
		return nil
	}
	dir := f.dir
	f.dir = ""
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing layer directory: %w", err)
	}
	return nil
}
