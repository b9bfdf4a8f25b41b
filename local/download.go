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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/userfile"
)

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
	// sources says the stream is read to its manifest.json, whose
	// LayerSources name the foreign layers (a Windows daemon lists there
	// the base layers it pulled as foreign, and writes their bytes too):
	// an archive written of the image then keeps them foreign.
	sources bool
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
	sources := src.sources
	for !f.done(imageID) || f.needsConfig(imageID) != "" || sources {
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
		if sources && hdr.Name == "manifest.json" && hdr.Size < maxManifestSize {
			sources = false
			var ms []struct {
				LayerSources map[v1.Hash]v1.Descriptor
			}
			if err := json.NewDecoder(tr).Decode(&ms); err != nil {
				return strangers, fmt.Errorf("reading the daemon's manifest.json: %w", err)
			}
			for _, m := range ms {
				f.keepSources(m.LayerSources)
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
		d, lf, keep, err := spool(src, dir, f.unlink, func(d v1.Hash) bool { return f.wanted(imageID, d) })
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
	return hex, ok && isDigestHex(hex)
}

// isDigestHex reports whether s is the hex of a sha256 digest.
func isDigestHex(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// spool writes the layer r (plain or gzip tar) uncompressed into dir while
// hashing it, and keeps it, named by its diffID (or unlinked, see
// canUnlinkLayers), when want has it.
func spool(r io.Reader, dir string, unlink bool, want func(v1.Hash) bool) (v1.Hash, layerFile, bool, error) {
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
	if unlink {
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
	if err := userfile.Place(tmp.Name(), final); err != nil {
		os.Remove(tmp.Name())
		return d, layerFile{}, false, err
	}
	return d, layerFile{path: final, size: n}, true, nil
}
