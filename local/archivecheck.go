package local

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
)

// errBadArchive is matched by the errors of a daemon archive that is not
// the image it should be; it matches imgutil.ErrInvalidArgument.
var errBadArchive = fmt.Errorf("the daemon's archive is not the image: %w", imgutil.ErrInvalidArgument)

// maxMetadataSize bounds what is read of an archive's metadata entries
// (manifest.json, index.json, repositories, configs, manifests).
const maxMetadataSize = 4 << 20

// archiveEntry is what a check learnt of an entry of a daemon archive.
type archiveEntry struct {
	digest v1.Hash
	size   int64
	// link is the target of a symbolic or hard link, made relative to the
	// archive's root ("" for a regular file).
	link string
	// data is the content of a small entry that may be metadata.
	data []byte
}

// archiveChecker checks a daemon's archive of one image as it streams by:
// every entry's name stays inside the archive, every regular entry is
// hashed (blobs must hash to their names), the tar must end in order, and
// at its end the archive must hold the image: the config of ID id (the
// classic stores, Podman) whose layers hash to diffIDs, or the manifest
// (or index) of digest id (the containerd store) naming the config and
// layers its manifest.json lists.
type archiveChecker struct {
	id      string
	diffIDs []v1.Hash
	entries map[string]archiveEntry
}

// hashingReader is a reader that can hash the next n bytes read from it,
// however they are read (Read or Seek), straight from its own memory.
type hashingReader interface {
	io.Reader
	hashNext(w io.Writer, n int64)
	// hashLeft is how many of those bytes are still to come.
	hashLeft() int64
}

// check reads the archive r to its end. When r is a hashingReader, the
// content of a large entry is hashed where r holds it as the tar reader
// skips it: read once, never copied.
func (c *archiveChecker) check(r io.Reader) error {
	c.entries = map[string]archiveEntry{}
	hr, _ := r.(hashingReader)
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	// pending is the large entry whose content r hashes as it is skipped.
	var pending *pendingEntry
	for {
		hdr, err := tr.Next()
		if pending != nil && err == nil || errors.Is(err, io.EOF) {
			if err := c.finish(pending, hr); err != nil {
				return err
			}
			pending = nil
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the daemon's archive: %w: %w", errBadArchive, err)
		}
		name, ok := inArchive(".", hdr.Name)
		if !ok {
			return fmt.Errorf("entry %q leads out of the archive: %w", hdr.Name, errBadArchive)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeSymlink, tar.TypeLink:
			dir := path.Dir(name)
			if hdr.Typeflag == tar.TypeLink {
				dir = "."
			}
			target, ok := inArchive(dir, hdr.Linkname)
			if !ok {
				return fmt.Errorf("link %q to %q leads out of the archive: %w", hdr.Name, hdr.Linkname, errBadArchive)
			}
			c.entries[name] = archiveEntry{link: target}
			continue
		case tar.TypeReg:
			if sparse(hdr) {
				return fmt.Errorf("entry %q is a sparse file: %w", hdr.Name, errBadArchive)
			}
		default:
			return fmt.Errorf("entry %q is of type %q: %w", hdr.Name, hdr.Typeflag, errBadArchive)
		}
		h := sha256.New()
		if hr != nil && hdr.Size > maxMetadataSize {
			// Hashed as the next Next skips it.
			hr.hashNext(h, hdr.Size)
			pending = &pendingEntry{name: name, hash: h, size: hdr.Size}
			continue
		}
		var small bytes.Buffer
		w := io.Writer(h)
		if hdr.Size <= maxMetadataSize {
			w = io.MultiWriter(h, &small)
		}
		n, err := io.CopyBuffer(w, tr, buf)
		if err != nil || n != hdr.Size {
			return fmt.Errorf("reading %s of the daemon's archive: %w: %w", hdr.Name, errBadArchive, errors.Join(err, io.ErrUnexpectedEOF))
		}
		e := archiveEntry{digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, size: n}
		if b := small.Bytes(); len(b) > 0 && (b[0] == '{' || b[0] == '[') {
			e.data = b // JSON: metadata (layers are tars)
		}
		if err := c.add(name, e); err != nil {
			return err
		}
	}
	return c.holdsImage()
}

// pendingEntry is an entry whose content a hashingReader hashes.
type pendingEntry struct {
	name string
	hash hash.Hash
	size int64
}

// finish records the pending entry p once its content went by.
func (c *archiveChecker) finish(p *pendingEntry, hr hashingReader) error {
	if p == nil {
		return nil
	}
	if left := hr.hashLeft(); left != 0 {
		return fmt.Errorf("reading %s of the daemon's archive: %d of its bytes were not read: %w: %w", p.name, left, errBadArchive, io.ErrUnexpectedEOF)
	}
	hr.hashNext(nil, 0)
	return c.add(p.name, archiveEntry{digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(p.hash.Sum(nil))}, size: p.size})
}

// add records the regular entry e, whose name, if it names a digest, must
// be e's.
func (c *archiveChecker) add(name string, e archiveEntry) error {
	if hexName, named := blobName(name); named && e.digest.Hex != hexName {
		return fmt.Errorf("%s of the daemon's archive holds content of digest %s: %w", name, e.digest, errBadArchive)
	}
	c.entries[name] = e
	return nil
}

// sparse reports whether hdr is a sparse file in PAX form (a regular
// entry whose stored bytes are fewer than its size).
func sparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// inArchive cleans name, relative to dir of the archive, and reports
// whether it stays inside the archive.
func inArchive(dir, name string) (string, bool) {
	if path.IsAbs(name) {
		return "", false
	}
	p := path.Clean(path.Join(dir, name))
	return p, p != ".." && !strings.HasPrefix(p, "../") && p != "."
}

// blobName returns the hex digest an entry is named by: a blob of an OCI
// layout, or Podman's <hex>.tar (see podmanLayer) and <hex>.json at the
// root.
func blobName(name string) (string, bool) {
	if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
		return hex, isDigestHex(hex)
	}
	if hex, ok := podmanLayer(name); ok {
		return hex, true
	}
	hex, ok := strings.CutSuffix(name, ".json")
	return hex, ok && isDigestHex(hex)
}

// resolve follows links to a regular entry.
func (c *archiveChecker) resolve(name string) (archiveEntry, bool) {
	for range 8 {
		e, ok := c.entries[name]
		if !ok || e.link == "" {
			return e, ok
		}
		name = e.link
	}
	return archiveEntry{}, false
}

// holdsImage checks, once the archive is read, that it is the image.
func (c *archiveChecker) holdsImage() error {
	mf, ok := c.resolve("manifest.json")
	if !ok {
		return fmt.Errorf("no manifest.json: %w", errBadArchive)
	}
	if mf.data == nil {
		return fmt.Errorf("manifest.json is %d bytes, more than the %d metadata may have: %w", mf.size, maxMetadataSize, errBadArchive)
	}
	var images []archive.DockerManifest
	if err := json.Unmarshal(mf.data, &images); err != nil {
		return fmt.Errorf("manifest.json: %w: %w", errBadArchive, err)
	}
	for _, im := range images {
		if _, ok := inArchive(".", im.Config); !ok {
			return fmt.Errorf("manifest.json names %q: %w", im.Config, errBadArchive)
		}
		for _, l := range im.Layers {
			if _, ok := inArchive(".", l); !ok {
				return fmt.Errorf("manifest.json names %q: %w", l, errBadArchive)
			}
		}
	}
	for _, im := range images {
		cfg, ok := c.resolve(path.Clean(im.Config))
		if !ok {
			continue
		}
		switch {
		case "sha256:"+cfg.digest.Hex == c.id:
			// The classic stores, Podman: the ID is the config's digest.
			return c.layersAre(im.Layers, c.diffIDs)
		case c.storedManifestNames(cfg.digest, im.Layers):
			// The containerd store: the ID is the manifest's digest.
			return nil
		}
	}
	return fmt.Errorf("no image of ID %s in it: %w", c.id, errBadArchive)
}

// layersAre checks that the layer entries named hash to diffIDs.
func (c *archiveChecker) layersAre(names []string, diffIDs []v1.Hash) error {
	if len(names) != len(diffIDs) {
		return fmt.Errorf("it lists %d layers, the image has %d: %w", len(names), len(diffIDs), errBadArchive)
	}
	for i, n := range names {
		e, ok := c.resolve(path.Clean(n))
		if !ok {
			return fmt.Errorf("layer %s is not in it: %w", n, errBadArchive)
		}
		if e.digest != diffIDs[i] {
			return fmt.Errorf("layer %s has diffID %s, not %s: %w", n, e.digest, diffIDs[i], imgutil.ErrDiffIDMismatch)
		}
	}
	return nil
}

// storedManifestNames reports whether the manifest of digest c.id (or one
// of the index of that digest) names the config cfg and the layer blobs
// listed, every one of which the archive holds (hashed to its digest, a
// link followed).
func (c *archiveChecker) storedManifestNames(cfg v1.Hash, layers []string) bool {
	id, err := v1.NewHash(c.id)
	if err != nil {
		return false
	}
	candidates := []v1.Hash{id}
	if e, ok := c.entries[blobPath(id)]; ok && e.data != nil {
		if idx, err := v1.ParseIndexManifest(bytes.NewReader(e.data)); err == nil && idx.MediaType != types.OCIManifestSchema1 && len(idx.Manifests) > 0 {
			for _, m := range idx.Manifests {
				candidates = append(candidates, m.Digest)
			}
		}
	}
	for _, d := range candidates {
		e, ok := c.entries[blobPath(d)]
		if !ok || e.data == nil {
			continue
		}
		m, err := v1.ParseManifest(bytes.NewReader(e.data))
		if err != nil || m.Config.Digest != cfg || len(m.Layers) != len(layers) {
			continue
		}
		all := true
		for i, l := range m.Layers {
			if path.Clean(layers[i]) != blobPath(l.Digest) {
				all = false
				break
			}
			// A link named by the digest is followed to what it holds.
			if e, ok := c.resolve(blobPath(l.Digest)); !ok || e.digest != l.Digest {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// checkedCopy copies the archive r into w while c checks it on another
// goroutine, up to checkAhead bytes behind the copy, so that hashing
// overlaps the transfer; it reads r to its end whatever the check finds,
// and returns the copy's failure or else the check's.
//
// Each read is written as soon as it comes, at most readSize bytes (as
// io.Copy reads): a read smaller than the socket's buffer lets the daemon
// go on writing while the bytes go to w (with reads of 1 MiB, the daemon
// waited on each write: a bare copy of 1 GiB took 1.25x as long; reads of
// 32 KiB did better than 64 KiB here). Reads fill a chunk of
// chunkSize, handed to the check once full, so that the check wakes once
// a chunk, not once a read.
func checkedCopy(w io.Writer, r io.Reader, c *archiveChecker) error {
	chunks := make(chan []byte, checkAhead/chunkSize)
	free := make(chan []byte, checkAhead/chunkSize+2)
	checked := make(chan error, 1)
	go func() {
		cr := &chunkReader{chunks: chunks, free: free}
		err := c.check(cr)
		// Whatever it found, the rest is taken, so the copy goes on.
		_, _ = io.Copy(io.Discard, cr)
		checked <- err
	}()
	var err error
	var buf []byte
	filled := 0
	for {
		if buf == nil {
			select {
			case buf = <-free:
			default:
				buf = make([]byte, chunkSize)
			}
			filled = 0
		}
		n, rerr := r.Read(buf[filled:min(filled+readSize, len(buf))])
		if n > 0 {
			if _, werr := w.Write(buf[filled : filled+n]); werr != nil && err == nil {
				// The rest is still read (and checked), not written.
				err, w = werr, io.Discard
			}
			filled += n
			if len(buf)-filled < readSize/4 {
				chunks <- buf[:filled]
				buf = nil
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if filled > 0 && buf != nil {
		chunks <- buf[:filled]
	}
	close(chunks)
	if cerr := <-checked; err == nil {
		err = cerr
	}
	return err
}

const (
	// checkAhead is how many bytes the check may lag the copy.
	checkAhead = 16 << 20
	// chunkSize is the size of the chunks handed to the check; readSize
	// the most one read takes.
	chunkSize = 1 << 20
	readSize  = 32 << 10
)

// chunkReader reads the chunks a copy hands over, returning each to free
// once read. It is a hashingReader, and seeks forward (as tar.Reader does
// to skip an entry) by taking chunks without copying them.
type chunkReader struct {
	chunks <-chan []byte
	free   chan<- []byte
	cur    []byte
	whole  []byte
	// pos is how many bytes were taken.
	pos int64
	// sink receives the next sinkLeft bytes taken.
	sink     io.Writer
	sinkLeft int64
}

// next makes cur hold unread bytes; false at the end of the chunks.
func (c *chunkReader) next() bool {
	for len(c.cur) == 0 {
		if c.whole != nil {
			select {
			case c.free <- c.whole[:cap(c.whole)]:
			default:
			}
			c.whole = nil
		}
		b, ok := <-c.chunks
		if !ok {
			return false
		}
		c.cur, c.whole = b, b
	}
	return true
}

// take consumes n bytes of cur, handing those due to the sink.
func (c *chunkReader) take(n int) {
	if c.sinkLeft > 0 {
		k := min(int64(n), c.sinkLeft)
		_, _ = c.sink.Write(c.cur[:k]) // a hash: never fails
		c.sinkLeft -= k
	}
	c.cur = c.cur[n:]
	c.pos += int64(n)
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if !c.next() {
		return 0, io.EOF
	}
	n := copy(p, c.cur)
	c.take(n)
	return n, nil
}

// Seek moves forward only (whence io.SeekCurrent, offset ≥ 0), taking the
// bytes skipped.
func (c *chunkReader) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return c.pos, errors.New("chunkReader: only forward seeks")
	}
	for offset > 0 {
		if !c.next() {
			return c.pos, io.ErrUnexpectedEOF
		}
		n := int(min(offset, int64(len(c.cur))))
		c.take(n)
		offset -= int64(n)
	}
	return c.pos, nil
}

func (c *chunkReader) hashNext(w io.Writer, n int64) { c.sink, c.sinkLeft = w, n }

func (c *chunkReader) hashLeft() int64 { return c.sinkLeft }
