// Package userfile creates the files a user keeps (layout blobs, index.json,
// exported archives) with the modes other tools give them: 0666 and 0777
// less the umask (0644 and 0755 under the usual 022), where os.CreateTemp
// and os.MkdirTemp make them private (0600, 0700).
package userfile

import (
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CreateTemp is os.CreateTemp with mode 0666 less the umask.
func CreateTemp(dir, pattern string) (*os.File, error) {
	for range 100 {
		f, err := os.OpenFile(name(dir, pattern), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, pattern), Err: fs.ErrExist}
}

// LinkTemp gives the complete file at src a new name in dir made from
// pattern (as CreateTemp), never one that exists, and removes src: the
// file appears whole under its final name. A link, not a rename over a
// placeholder: on ext4 a rename that replaces a file forces the new file's
// data to disk at once (auto_da_alloc), which costs an export its speed.
func LinkTemp(src, dir, pattern string) (string, error) {
	for range 100 {
		n := name(dir, pattern)
		err := os.Link(src, n)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return n, os.Remove(src)
	}
	return "", &fs.PathError{Op: "linktemp", Path: filepath.Join(dir, pattern), Err: fs.ErrExist}
}

// MkdirTemp is os.MkdirTemp with mode 0777 less the umask.
func MkdirTemp(dir, pattern string) (string, error) {
	for range 100 {
		n := name(dir, pattern)
		err := os.Mkdir(n, 0o777)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return n, err
	}
	return "", &fs.PathError{Op: "mkdirtemp", Path: filepath.Join(dir, pattern), Err: fs.ErrExist}
}

// name puts a random string where pattern has its last "*" (at its end if
// none), as os.CreateTemp does.
func name(dir, pattern string) string {
	if dir == "" {
		dir = os.TempDir()
	}
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	return filepath.Join(dir, prefix+strings.ToLower(rand.Text()[:12])+suffix)
}

// WriteAtomic writes what r holds to path through a temp file beside it
// renamed into place: a reader of path sees the whole file or none.
func WriteAtomic(path string, r io.Reader) error {
	f, err := CreateTemp(filepath.Dir(path), ".partial-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = Replace(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
