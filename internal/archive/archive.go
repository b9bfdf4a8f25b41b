package archive

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
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/imgerr"
	"github.com/imgbridge/imgutil/internal/userfile"
	"github.com/imgbridge/imgutil/internal/verified"
)

// Entry is one file of an archive. Open streams its Size bytes; Data holds
// them instead for small files; Path names a file holding exactly them.
type Entry struct {
	Name string
	Size int64
	Data []byte
	Open func() (io.ReadCloser, error)
	// Path is a file whose bytes are the entry's (a layer file, a blob):
	// where the archive is a file too, the kernel copies them
	// (copy_file_range), never passing through this process.
	Path string
	// Verify, with Path, is the sha256 the bytes must have (a file the
	// caller may have changed since it was added): the bytes written are
	// hashed, and a mismatch fails the write with imgerr.ErrDiffIDMismatch.
	// Zero for a file trusted by its name (a blob named by its digest).
	Verify v1.Hash
	// Within, with Path, is a directory the file must be reached in: Path
	// is opened through it (os.Root), so that no symbolic link leads out
	// (a blob of a layout someone else may have written).
	Within string

	// progress, when set, is told how many bytes of a Path entry were
	// written once they are (see Reporting).
	progress func(done int64)
}

// Write streams entries to w as a tar. An entry whose content is not exactly
// Size bytes long fails the write.
//
// Headers are written by archive/tar; content goes straight to w, so that
// a file copied into a file is copied by the kernel. Path entries with
// Verify are checked by hashing what was written, read back from w (a
// file) by one goroutine while the next entries are copied.
func Write(w io.Writer, entries []Entry) error {
	_, err := write(w, entries, false)
	return err
}

// WriteToLoad is Write for an archive a daemon reads as it comes (an image
// load), on a connection that may have to serve later requests: a failure
// does not cut the stream short, which would leave the daemon waiting for
// the rest on a connection that then serves nothing else. The entry being
// written is completed with zeros (when at most maxSpoilPad bytes are
// missing; sources are opened before their header is written, so a file
// that cannot be opened costs nothing), then comes a block that is no tar
// header: the daemon refuses the archive, nothing loaded (the manifest and
// index entries come last), and the request ends in order. ended reports
// that the archive was so ended; then w may be closed as at a normal end.
func WriteToLoad(w io.Writer, entries []Entry) (ended bool, err error) {
	return write(w, entries, true)
}

// maxSpoilPad bounds the zeros WriteToLoad sends to complete an entry cut
// by a failure.
const maxSpoilPad = 64 << 20

func write(w io.Writer, entries []Entry, spoil bool) (bool, error) {
	cw := &tarWriter{w: w}
	if f, ok := w.(*os.File); ok {
		// Read back only from a regular file, from where it stands.
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				cw.out, cw.pos = f, pos
			}
		}
	}
	for _, e := range entries {
		if err := cw.entry(e); err != nil {
			cw.abort()
			return spoil && cw.spoil(), fmt.Errorf("writing %s: %w", e.Name, err)
		}
	}
	if err := cw.write(make([]byte, 2*blockSize)); err != nil {
		cw.abort()
		return false, err
	}
	if err := cw.wait(); err != nil {
		// Checks only run on files, never on a load: nothing to spoil.
		return false, err
	}
	return false, nil
}

// spoil ends the archive after a failed entry so that no reader accepts
// it (see WriteToLoad), and reports whether it could.
func (t *tarWriter) spoil() bool {
	if t.writeFailed {
		return false
	}
	end := t.pos
	if t.entryEnd > 0 {
		end = t.entryEnd
	}
	if missing := end - t.pos; missing < 0 || missing > maxSpoilPad {
		return false
	}
	for t.pos < end {
		n := min(end-t.pos, 1<<20)
		if t.write(make([]byte, n)) != nil {
			return false
		}
	}
	bad := bytes.Repeat([]byte{0xff}, blockSize)
	return t.write(bad) == nil
}

const blockSize = 512

// tarWriter writes tar entries to w, keeping its position.
type tarWriter struct {
	w   io.Writer
	out *os.File // w, when it is a file
	pos int64
	buf []byte
	// entryEnd is where the entry being written ends (padding included),
	// once its header is written; writeFailed is set when w failed.
	entryEnd    int64
	writeFailed bool

	// checks are regions written to hash, one at a time, in order, by a
	// goroutine that sends the first failure to result when checks closes;
	// failed holds it as soon as it is known.
	checks chan check
	result chan error
	failed atomic.Pointer[error]
}

type check struct {
	name      string
	off, size int64
	want      v1.Hash
	// fi is what stat said of the file before it was copied: a match is
	// recorded for it (see verified).
	fi os.FileInfo
}

func (t *tarWriter) write(p []byte) error {
	n, err := t.w.Write(p)
	t.pos += int64(n)
	if err != nil {
		t.writeFailed = true
	}
	return err
}

func (t *tarWriter) entry(e Entry) error {
	t.entryEnd = 0
	// The source is opened before anything of the entry is written.
	var src io.ReadCloser
	switch {
	case e.Path != "":
		f, err := openFile(e)
		if err != nil {
			return err
		}
		src = f
	case e.Open != nil:
		rc, err := e.Open()
		if err != nil {
			return err
		}
		src = rc
	default:
		if int64(len(e.Data)) != e.Size {
			return tooLong(e.Size)
		}
	}
	if src != nil {
		defer src.Close()
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	// Only the header is taken from archive/tar (content follows apart).
	if err := tw.WriteHeader(&tar.Header{Name: e.Name, Mode: 0o644, Size: e.Size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if err := t.write(hdr.Bytes()); err != nil {
		return err
	}
	pad := (blockSize - e.Size%blockSize) % blockSize
	t.entryEnd = t.pos + e.Size + pad
	var err error
	switch {
	case e.Path != "":
		err = t.file(e, src.(*os.File))
	case e.Open != nil:
		err = t.stream(e.Size, src)
	default:
		err = t.write(e.Data)
	}
	if err != nil {
		return err
	}
	if pad > 0 {
		return t.write(make([]byte, pad))
	}
	return nil
}

func tooLong(size int64) error {
	return fmt.Errorf("content is not %d bytes long: %w", size, imgutil.ErrInvalidArgument)
}

// stream copies size bytes of rc, and makes sure there are no more.
func (t *tarWriter) stream(size int64, rc io.Reader) error {
	if t.buf == nil {
		t.buf = make([]byte, 1<<20)
	}
	n, err := io.CopyBuffer(onlyWriter{t}, io.LimitReader(rc, size), t.buf)
	if err != nil {
		return err
	}
	if n != size {
		return tooLong(size)
	}
	// A reader that checks its content at its end (a layer file verifying
	// its diffID) reports there: read to it.
	if m, err := rc.Read(t.buf[:1]); m > 0 {
		return tooLong(size)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// onlyWriter hides everything but Write (io.CopyBuffer uses the buffer).
type onlyWriter struct{ t *tarWriter }

func (o onlyWriter) Write(p []byte) (int, error) {
	n, err := o.t.w.Write(p)
	o.t.pos += int64(n)
	if err != nil {
		o.t.writeFailed = true
	}
	return n, err
}

// file copies the file e.Path: by the kernel when the archive is a file
// (the bytes written then checked against e.Verify from the archive), else
// through a verifying read.
func (t *tarWriter) file(e Entry, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != e.Size {
		if e.Verify != (v1.Hash{}) {
			return fmt.Errorf("file %s is %d bytes, not %d: %w", e.Path, fi.Size(), e.Size, imgerr.ErrDiffIDMismatch)
		}
		return tooLong(e.Size)
	}
	// A file found to have this digest before, and unchanged since, is not
	// hashed again.
	verify := e.Verify != (v1.Hash{}) && !verified.Known(fi, e.Verify)
	if t.out == nil {
		var r io.Reader = f
		if verify {
			r = &hashing{r: f, h: sha256.New()}
		}
		err := t.stream(e.Size, r)
		if h, ok := r.(*hashing); ok && err == nil {
			if err = mismatch(e.Path, e.Verify, h.sum()); err == nil {
				verified.Remember(fi, e.Verify)
			}
		}
		if err == nil && e.progress != nil {
			e.progress(e.Size)
		}
		return err
	}
	start := t.pos
	// Both ends are files, nothing wraps them: copy_file_range.
	n, err := io.CopyN(t.out, f, e.Size)
	t.pos += n
	if err != nil {
		return err
	}
	if e.progress != nil {
		e.progress(n)
	}
	if verify {
		return t.check(check{name: e.Path, off: start, size: e.Size, want: e.Verify, fi: fi})
	}
	return nil
}

// openFile opens the file of a Path entry: through e.Within when set, so
// that no symbolic link leads out of it; it must be a regular file.
func openFile(e Entry) (*os.File, error) {
	if e.Within == "" {
		return os.Open(e.Path)
	}
	rel, err := filepath.Rel(e.Within, e.Path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenInRoot(e.Within, rel)
	if err != nil {
		return nil, fmt.Errorf("opening %s in %s: %w: %w", rel, e.Within, imgutil.ErrInvalidArgument, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s in %s is not a regular file: %w", rel, e.Within, imgutil.ErrInvalidArgument)
	}
	return f, nil
}

func mismatch(path string, want, got v1.Hash) error {
	if got != want {
		return fmt.Errorf("layer file %s has sha256 %s, not %s: %w", path, got, want, imgerr.ErrDiffIDMismatch)
	}
	return nil
}

// check queues a region of the archive to be hashed against its digest;
// it fails when an earlier check has.
func (t *tarWriter) check(c check) error {
	if t.checks == nil {
		t.checks = make(chan check, 64)
		t.result = make(chan error, verifiers)
		for range verifiers {
			go t.verify(t.checks, t.result)
		}
	}
	if err := t.failed.Load(); err != nil {
		return *err
	}
	t.checks <- c
	return nil
}

// verifiers is how many regions are hashed at once: sha256 (about 1.6
// GB/s a core) is slower than the kernel's copy, so several layers are
// checked side by side.
var verifiers = max(1, min(runtime.GOMAXPROCS(0), 4))

// verify hashes each region it takes, reading it back from the file; a
// mismatch is recorded (no more regions are read by anyone) and each
// verifier sends its first failure, or nil, once the queue is closed.
func (t *tarWriter) verify(checks <-chan check, result chan<- error) {
	buf := make([]byte, 1<<20)
	var failed error
	for c := range checks {
		if failed != nil || t.failed.Load() != nil {
			continue
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(t.out, c.off, c.size), buf); err != nil {
			failed = fmt.Errorf("reading back %s: %w", c.name, err)
		} else {
			failed = mismatch(c.name, c.want, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))})
			if failed == nil && c.fi != nil {
				verified.Remember(c.fi, c.want)
			}
		}
		if failed != nil {
			t.failed.Store(&failed)
		}
	}
	result <- failed
}

// wait returns once every queued check is done, with the first failure.
func (t *tarWriter) wait() error {
	if t.checks == nil {
		return nil
	}
	close(t.checks)
	t.checks = nil
	var first error
	for range verifiers {
		if err := <-t.result; first == nil {
			first = err
		}
	}
	t.result = nil
	return first
}

// abort stops the checks after a failed write.
func (t *tarWriter) abort() { _ = t.wait() }

// hashing hashes what is read through it.
type hashing struct {
	r io.Reader
	h hash.Hash
}

func (h *hashing) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

func (h *hashing) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.h.Sum(nil))}
}

// dockerManifest is one image of a docker-archive manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Source is a layer whose bytes, in one form, are a file as it is (a
// layer file, a layout blob): the path, and the sha256 the bytes must have
// when the file is not trusted by its name (zero when it is).
type Source interface {
	Source(compressed bool) (path string, verify v1.Hash, ok bool)
}

// Rooted is a Source whose file must be reached within a directory (see
// Entry.Within).
type Rooted interface {
	SourceRoot() string
}

// layerEntries returns the archive entries of layers, all in one form:
// uncompressed tars when every layer knows its uncompressed size without
// work (a daemon's layers, new layer files), else the stored (compressed)
// blobs, which compressed says. Some readers of docker archives assume one
// form for all layers.
func layerEntries(layers []v1.Layer) (entries []Entry, compressed bool, err error) {
	entries = make([]Entry, len(layers))
	sizes := make([]int64, len(layers))
	for i, l := range layers {
		u, ok := l.(interface{ UncompressedSize() (int64, error) })
		if !ok {
			compressed = true
			break
		}
		size, err := u.UncompressedSize()
		if err != nil {
			return nil, false, fmt.Errorf("layer %d: %w", i, err)
		}
		sizes[i] = size
	}
	for i, l := range layers {
		if compressed {
			e, err := compressedEntry(l)
			if err != nil {
				return nil, false, fmt.Errorf("layer %d: %w", i, err)
			}
			entries[i] = e
			continue
		}
		d, err := l.DiffID()
		if err != nil {
			return nil, false, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
		}
		entries[i] = Entry{Name: blobName(d), Size: sizes[i], Open: l.Uncompressed}
		fromFile(&entries[i], l, false)
	}
	return entries, compressed, nil
}

// fromFile makes e copy the file l's bytes are in, when there is one.
func fromFile(e *Entry, l v1.Layer, compressed bool) {
	if s, ok := l.(Source); ok {
		if path, verify, ok := s.Source(compressed); ok {
			e.Path, e.Verify, e.Open = path, verify, nil
			if r, ok := l.(Rooted); ok {
				e.Within = r.SourceRoot()
			}
		}
	}
}

func compressedEntry(l v1.Layer) (Entry, error) {
	d, err := l.Digest()
	if err != nil {
		return Entry{}, fmt.Errorf("getting layer digest: %w", err)
	}
	size, err := l.Size()
	if err != nil {
		return Entry{}, fmt.Errorf("getting layer size: %w", err)
	}
	e := Entry{Name: blobName(d), Size: size, Open: l.Compressed}
	fromFile(&e, l, true)
	return e, nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// Docker returns the entries of a docker-archive (what `docker load` reads)
// holding one image: its config, its layers and a manifest.json that tags it
// with tags. A layer shared by two positions is written once. Layers for
// which omit is true are listed in manifest.json but not written: a daemon
// that holds their chain never reads them (omit may be nil).
func Docker(rawConfig []byte, configDigest v1.Hash, layers []v1.Layer, tags []string, omit func(i int) bool) ([]Entry, error) {
	entries, _, err := docker(rawConfig, configDigest, layers, tags, omit)
	return entries, err
}

// docker is Docker; it also says whether the layers were written as stored
// (compressed, see layerEntries).
func docker(rawConfig []byte, configDigest v1.Hash, layers []v1.Layer, tags []string, omit func(i int) bool) ([]Entry, bool, error) {
	entries := []Entry{{Name: blobName(configDigest), Size: int64(len(rawConfig)), Data: rawConfig}}
	m := dockerManifest{Config: blobName(configDigest), RepoTags: tags, Layers: make([]string, len(layers))}
	var sent []v1.Layer
	var sentAt []int
	for i, l := range layers {
		if omit != nil && omit(i) {
			d, err := l.DiffID()
			if err != nil {
				return nil, false, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
			}
			m.Layers[i] = blobName(d)
			continue
		}
		sent = append(sent, l)
		sentAt = append(sentAt, i)
	}
	les, compressed, err := layerEntries(sent)
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{entries[0].Name: true}
	for j, e := range les {
		m.Layers[sentAt[j]] = e.Name
		if !seen[e.Name] {
			seen[e.Name] = true
			entries = append(entries, e)
		}
	}
	raw, err := json.Marshal([]dockerManifest{m})
	if err != nil {
		return nil, false, fmt.Errorf("encoding manifest.json: %w", err)
	}
	return append(entries, Entry{Name: "manifest.json", Size: int64(len(raw)), Data: raw}), compressed, nil
}

// WriteFile writes entries as a tar into a new file in dir (os.TempDir when
// empty) named after pattern (as os.CreateTemp) and returns its path. The
// tar is written under a hidden temp name and renamed once complete: on
// failure no file is left.
func WriteFile(dir, pattern string, entries []Entry) (string, error) {
	return WriteFileFrom(dir, pattern, func(w io.Writer) error { return Write(w, entries) })
}

// partialPrefix starts the names of archives being written:
// .imgutil-partial-<pid>-<random>, removed by a later write in the same
// directory once the process is gone (killed mid-write).
const partialPrefix = ".imgutil-partial-"

// swept are the directories already swept by this process.
var swept sync.Map

func sweepPartials(dir string) {
	if _, done := swept.LoadOrStore(dir, true); !done {
		userfile.SweepStale(dir, partialPrefix)
	}
}

// WriteFileFrom is WriteFile for an archive write produces.
func WriteFileFrom(dir, pattern string, write func(w io.Writer) error) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	sweepPartials(dir)
	f, err := userfile.CreateTemp(dir, userfile.OwnedPattern(partialPrefix))
	if err != nil {
		return "", fmt.Errorf("creating archive: %w", err)
	}
	partial := f.Name()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(partial)
		return "", fmt.Errorf("writing archive: %w", err)
	}
	final, err := userfile.LinkTemp(partial, dir, pattern)
	if err != nil {
		os.Remove(partial)
		if final != "" {
			// Named, but the partial name could not be removed: keep one.
			os.Remove(final)
		}
		return "", fmt.Errorf("writing archive: %w", err)
	}
	return filepath.Clean(final), nil
}

// Tag returns ref as a tag for a manifest.json RepoTags list
// (registry/repository:tag), or an error for a reference that is not a tag.
func Tag(ref string) (string, error) {
	t, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		// "invalid reference format" is the daemon's words, which callers match.
		return "", fmt.Errorf("parsing tag %q: invalid reference format: %w: %w", ref, imgutil.ErrInvalidArgument, err)
	}
	return t.Name(), nil
}

// WriteImageFile writes an archive of the image b (all layers written,
// tagged with tags) as a new file in the temp directory named after
// pattern, through WriteFile: no partial file is left on failure.
//
// It is a docker archive (manifest.json), which every daemon loads. When
// the layers are written as stored (compressed blobs, as in a registry or
// a layout), it is an OCI layout as well, holding b's manifest: a
// containerd image store then loads the very manifest, so the image gets
// the same ID (the manifest digest) it has where it came from.
//
// report, when not nil, receives progress (see Reporting).
func WriteImageFile(b *built.Built, tags []string, pattern string, report func(item string, done, total int64)) (string, error) {
	entries, err := ImageEntries(b, tags)
	if err != nil {
		return "", fmt.Errorf("saving image to file: %w", err)
	}
	return WriteFile("", pattern, Reporting(entries, report))
}

// ImageEntries returns the entries of the archive WriteImageFile writes.
func ImageEntries(b *built.Built, tags []string) ([]Entry, error) {
	entries, compressed, err := docker(b.RawConfig, b.ConfigDigest(), b.Layers, tags, nil)
	if err != nil || !compressed {
		return entries, err
	}
	rawManifest, err := b.RawManifest()
	if err != nil {
		return nil, err
	}
	md := built.SHA256(rawManifest)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	desc := v1.Descriptor{MediaType: b.ManifestType(), Size: int64(len(rawManifest)), Digest: md}
	for _, t := range tags {
		d := desc
		d.Annotations = map[string]string{"io.containerd.image.name": containerdName(t), "org.opencontainers.image.ref.name": refName(t)}
		idx.Manifests = append(idx.Manifests, d)
	}
	if len(tags) == 0 {
		idx.Manifests = append(idx.Manifests, desc)
	}
	rawIndex, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encoding index.json: %w", err)
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	return append(entries,
		Entry{Name: blobName(md), Size: int64(len(rawManifest)), Data: rawManifest},
		Entry{Name: "oci-layout", Size: int64(len(layout)), Data: layout},
		Entry{Name: "index.json", Size: int64(len(rawIndex)), Data: rawIndex},
	), nil
}

// containerdName is tag as a containerd image store names images
// (docker.io/library/name:tag).
func containerdName(tag string) string {
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return tag
	}
	return reference.TagNameOnly(named).String()
}

// refName is the tag part of a tag (what an OCI layout's ref name holds).
func refName(tag string) string {
	if t, err := name.NewTag(tag, name.WeakValidation); err == nil {
		return t.TagStr()
	}
	return tag
}

// Reporter adapts a progress function of the public API to Reporting, for
// phase; nil for a nil f.
func Reporter(f func(imgutil.Progress), phase string) func(item string, done, total int64) {
	if f == nil {
		return nil
	}
	return func(item string, done, total int64) {
		f(imgutil.Progress{Phase: phase, Item: item, Complete: done, Total: total})
	}
}

// Reporting returns entries whose content reports, as it is read, to
// report(item, bytes read, size): at most once per MiB and once at the
// end. A nil report returns entries unchanged.
func Reporting(entries []Entry, report func(item string, done, total int64)) []Entry {
	if report == nil {
		return entries
	}
	out := make([]Entry, len(entries))
	for i, e := range entries {
		out[i] = e
		if e.Path != "" {
			item, total := itemOf(e.Name), e.Size
			out[i].progress = func(done int64) { report(item, done, total) }
			continue
		}
		if e.Open == nil {
			continue
		}
		open, item, total := e.Open, itemOf(e.Name), e.Size
		out[i].Open = func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				return nil, err
			}
			return &reporter{ReadCloser: rc, item: item, total: total, report: report}, nil
		}
	}
	return out
}

// itemOf names a blob entry by its digest.
func itemOf(name string) string {
	if rest, ok := strings.CutPrefix(name, "blobs/"); ok {
		return strings.Replace(rest, "/", ":", 1)
	}
	return name
}

// reporter counts what is read through it and reports it.
type reporter struct {
	io.ReadCloser
	item         string
	done, total  int64
	lastReported int64
	report       func(item string, done, total int64)
}

func (r *reporter) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.done += int64(n)
	if r.done-r.lastReported >= 1<<20 || (err != nil && r.done != r.lastReported) {
		r.lastReported = r.done
		r.report(r.item, r.done, r.total)
	}
	return n, err
}

// ReportingReader returns r reporting, as it is read, to report (see
// Reporting); r itself for a nil report.
func ReportingReader(r io.Reader, name string, total int64, report func(item string, done, total int64)) io.Reader {
	if report == nil {
		return r
	}
	return &reporter{ReadCloser: io.NopCloser(r), item: itemOf(name), total: total, report: report}
}
