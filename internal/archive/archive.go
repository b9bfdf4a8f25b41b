package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/imgerr"
	"github.com/imgbridge/imgutil/internal/layer"
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

	// Records, when set, are the records of files checked that the
	// source's owner keeps: a Path entry found there is not hashed again,
	// one hashed is added (see internal/verified).
	Records *verified.Records

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
	return WriteContext(context.Background(), w, entries)
}

// WriteContext is Write that stops with ctx's error once ctx is done.
func WriteContext(ctx context.Context, w io.Writer, entries []Entry) error {
	_, err := write(ctx, w, entries, false)
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
	// The load request carries the context: cancelled, it ends the body.
	return write(context.Background(), w, entries, true)
}

// maxSpoilPad bounds the zeros WriteToLoad sends to complete an entry cut
// by a failure.
const maxSpoilPad = 64 << 20

func write(ctx context.Context, w io.Writer, entries []Entry, spoil bool) (bool, error) {
	cw := &tarWriter{ctx: ctx, w: w}
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

// kernelStep is how much a kernel copy moves between looks at the context.
const kernelStep = 64 << 20

// tarWriter writes tar entries to w, keeping its position.
type tarWriter struct {
	ctx context.Context // done: writes fail with its error
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
	// recorded for it in records (see verified).
	fi      os.FileInfo
	records *verified.Records
}

func (t *tarWriter) write(p []byte) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
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
	if err := o.t.ctx.Err(); err != nil {
		return 0, err
	}
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
	verify := e.Verify != (v1.Hash{}) && !e.Records.Known(fi, e.Verify)
	if t.out == nil {
		var r io.Reader = f
		if verify {
			// Checked at its end, which stream reads to.
			r = layer.Verifying(f, e.Verify, e.Size, "layer file "+e.Path, "sha256",
				func() { e.Records.Remember(fi, e.Verify) })
		}
		err := t.stream(e.Size, r)
		if err == nil && e.progress != nil {
			e.progress(e.Size)
		}
		return err
	}
	start := t.pos
	// Both ends are files, nothing wraps them: copy_file_range, in steps
	// between which the context is looked at.
	var n int64
	for n < e.Size {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		m, err := io.CopyN(t.out, f, min(e.Size-n, kernelStep))
		n += m
		t.pos += m
		if err != nil {
			return err
		}
	}
	if e.progress != nil {
		e.progress(n)
	}
	if verify {
		return t.check(check{name: e.Path, off: start, size: e.Size, want: e.Verify, fi: fi, records: e.Records})
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
