package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
)

// The Windows security descriptors given to entries that carry none, as
// base64 of self-relative binary descriptors with an owner and a group and
// no access lists (SDDL "O:BAG:BA" and "O:BUG:BU").
const (
	// AdministratratorOwnerAndGroupSID is owner and group
	// BUILTIN\Administrators (S-1-5-32-544): entries of uid 0 and gid 0.
	AdministratratorOwnerAndGroupSID = "AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAgAgAAAQIAAAAAAAUgAAAAIAIAAA=="
	// UserOwnerAndGroupSID is owner and group BUILTIN\Users (S-1-5-32-545):
	// every other entry.
	UserOwnerAndGroupSID = "AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA=="
)

// rawSDRecord is the PAX record Windows daemons read an entry's security
// descriptor from.
const rawSDRecord = "MSWINDOWS.rawsd"

// filesDir and hivesDir are the two roots of a Windows layer: the file
// system and the registry hives.
const (
	filesDir = "Files"
	hivesDir = "Hives"
)

// WindowsWriter is a tar writer for Windows container layers. Callers write
// entries with absolute POSIX names ("/cnb/x"); the writer puts them under
// Files/, writes each missing parent directory once, and gives entries
// without PAX records a security descriptor by owner.
type WindowsWriter struct {
	tw *tar.Writer
	// started is set once Files and Hives are written.
	started bool
	// dirs are the directories written, by name.
	dirs map[string]bool
}

// NewWindowsWriter returns a WindowsWriter writing to fileWriter.
func NewWindowsWriter(fileWriter io.Writer) *WindowsWriter {
	return &WindowsWriter{tw: tar.NewWriter(fileWriter), dirs: map[string]bool{}}
}

// start writes the two roots of the layer, once.
func (w *WindowsWriter) start() error {
	if w.started {
		return nil
	}
	w.started = true
	for _, d := range []string{filesDir, hivesDir} {
		if err := w.writeDir(d); err != nil {
			return err
		}
	}
	return nil
}

func (w *WindowsWriter) writeDir(name string) error {
	if w.dirs[name] {
		return nil
	}
	w.dirs[name] = true
	return w.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir})
}

// WriteHeader writes header under Files/ (its name must be an absolute
// POSIX path), after any parent directory not written yet. A directory is
// written once. A header with no PAX records gets the security descriptor
// of BUILTIN\Administrators when uid and gid are 0, else BUILTIN\Users.
func (w *WindowsWriter) WriteHeader(header *tar.Header) error {
	if err := w.start(); err != nil {
		return err
	}
	if !strings.HasPrefix(header.Name, "/") || strings.Contains(header.Name, `\`) {
		return fmt.Errorf("invalid header name: must be absolute, posix path: %s", header.Name)
	}
	name := path.Join(filesDir, path.Clean(header.Name))
	var parents []string
	for d := path.Dir(name); d != "." && d != filesDir && !w.dirs[d]; d = path.Dir(d) {
		parents = append(parents, d)
	}
	for i := len(parents) - 1; i >= 0; i-- {
		if err := w.writeDir(parents[i]); err != nil {
			return err
		}
	}
	if header.Typeflag == tar.TypeDir {
		if w.dirs[name] {
			return nil
		}
		w.dirs[name] = true
	}
	h := *header
	h.Name = name
	h.Format = tar.FormatPAX
	if len(h.PAXRecords) == 0 {
		sd := UserOwnerAndGroupSID
		if h.Uid == 0 && h.Gid == 0 {
			sd = AdministratratorOwnerAndGroupSID
		}
		h.PAXRecords = map[string]string{rawSDRecord: sd}
	}
	return w.tw.WriteHeader(&h)
}

// Write writes content of the current entry.
func (w *WindowsWriter) Write(content []byte) (int, error) { return w.tw.Write(content) }

// Flush finishes the current entry's padding.
func (w *WindowsWriter) Flush() error { return w.tw.Flush() }

// Close writes the layer's roots if nothing was written, then the tar's
// end. It does not close the underlying writer.
func (w *WindowsWriter) Close() (err error) {
	if err := w.start(); err != nil {
		return err
	}
	return w.tw.Close()
}
