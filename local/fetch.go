package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
)

// fetcher reads layers of daemon images into a temp directory, each layer
// file once, with one streamed ImageSave per image per request.
type fetcher struct {
	client DockerClient
	// saveOpts are the options of every ImageSave (a platform, where the
	// daemon takes one).
	saveOpts func(ctx context.Context, imageID string) []client.ImageSaveOption
	// exportRef is what ImageSave takes for an image ID (see
	// Store.exportRef); nil: the ID.
	exportRef func(imageID string) string
	// reporter gives the progress function of downloads (nil for none).
	reporter func() func(item string, done, total int64)

	// unlink says layer files are kept open and unlinked (see
	// canUnlinkLayers).
	unlink bool

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
	// sources are the foreign layers' descriptors archives listed, by
	// diffID (Windows base layers: see source.sources).
	sources map[v1.Hash]v1.Descriptor
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

// canUnlinkLayers says layer files can be kept open and unlinked (Linux,
// with /proc): see layerFile.file. Elsewhere they stay in the directory
// until Close, or until a later process sweeps it (each fetcher holds the
// choice, so tests force the other way).
var canUnlinkLayers = func() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	fi, err := os.Stat("/proc/self/fd")
	return err == nil && fi.IsDir()
}()

func newFetcher(c DockerClient, saveOpts func(context.Context, string) []client.ImageSaveOption, reporter func() func(string, int64, int64)) *fetcher {
	return &fetcher{client: c, saveOpts: saveOpts, reporter: reporter, unlink: canUnlinkLayers,
		files: map[v1.Hash]layerFile{}, failed: map[string]error{},
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

	ref := imageID
	if f.exportRef != nil {
		ref = f.exportRef(imageID)
	}
	src := source{name: ref, ids: allIDs, manifest: h.manifest, learnt: h.learnt, sources: h.sources}
	if h.probe != nil && h.config == "" && !h.sources && probeWorthIt(last, len(allIDs)) {
		// A failed probe costs nothing but the try: the image is read.
		if name, nonce, release, err := h.probe(ctx, last+1); err == nil {
			defer release()
			src = source{name: name, nonce: nonce, ids: allIDs[:last+1]}
		}
	}
	strangers, err := f.download(ctx, dir, src, imageID, h.stored)
	for tries := 1; tries < maxExports && exportDropped(err) && ctx.Err() == nil; tries++ {
		// The daemon dropped the export (a prune removed its lease):
		// read again what is still wanted.
		strangers, err = f.download(ctx, dir, src, imageID, h.stored)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.wantConfig, imageID)
	if f.downloading--; f.downloading == 0 && f.unlink && f.dir != "" {
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
	// sources says the archive's manifest.json is read for the sources
	// of foreign layers (a Windows image: see source.sources).
	sources bool
}

// source returns the descriptor of the foreign layer diffID, when an
// archive read listed it among its LayerSources.
func (f *fetcher) source(diffID v1.Hash) (v1.Descriptor, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.sources[diffID]
	return d, ok
}

func (f *fetcher) keepSources(m map[v1.Hash]v1.Descriptor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sources == nil {
		f.sources = map[v1.Hash]v1.Descriptor{}
	}
	maps.Copy(f.sources, m)
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

// maxExports bounds the exports of one download that the daemon may drop.
const maxExports = 3

// exportDropped reports whether an export failed because the daemon
// dropped it, its lease removed (see leaseLost).
func exportDropped(err error) bool { return err != nil && leaseLost(err) }
