package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// WriteDir writes the tree under dir as a layer tar to w, with entries under
// prefix (e.g. "workspace"; "" for the root). Entries are sorted, owned by
// root and dated modTime, so the same tree always gives the same bytes.
func WriteDir(w io.Writer, dir, prefix string, modTime time.Time) error {
	tw := tar.NewWriter(w)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("opening layer directory: %w", err)
	}
	defer root.Close()
	if prefix != "" {
		if _, err := CleanName(prefix); err != nil {
			return err
		}
		if err := addParents(tw, prefix, modTime); err != nil {
			return err
		}
	}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = root.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = path.Join(prefix, p)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		normalize(hdr, modTime)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing layer from %s: %w", dir, err)
	}
	return tw.Close()
}

func addParents(tw *tar.Writer, prefix string, modTime time.Time) error {
	clean := path.Clean(prefix)
	var dirs []string
	for d := clean; d != "." && d != "/"; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}
		normalize(hdr, modTime)
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing layer: %w", err)
		}
	}
	return nil
}

func normalize(hdr *tar.Header, modTime time.Time) {
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = modTime, time.Time{}, time.Time{}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.Format = tar.FormatPAX
}

// Extract writes the layer tar r under dir, which must exist. No entry can
// write outside dir: names are checked with CheckHeader, and every file
// operation goes through an os.Root, which refuses to follow a symbolic link
// out of dir. Device files and FIFOs are skipped; a later entry replaces an
// earlier one with the same name.
func Extract(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("opening extraction directory: %w", err)
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w: %w", imgerr.ErrInvalidArgument, err)
		}
		if err := CheckHeader(hdr); err != nil {
			return err
		}
		if err := extractEntry(root, hdr, tr); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
	}
}

func extractEntry(root *os.Root, hdr *tar.Header, r io.Reader) error {
	name, _ := CleanName(hdr.Name)
	if name == "." {
		return nil
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := fs.FileMode(hdr.Mode) & fs.ModePerm
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return err
		}
		return root.Chmod(name, mode|0o700)
	case tar.TypeReg:
		if err := removeExisting(root, name); err != nil {
			return err
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		if err := removeExisting(root, name); err != nil {
			return err
		}
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		if err := removeExisting(root, name); err != nil {
			return err
		}
		target, _ := CleanName(hdr.Linkname)
		return root.Link(filepath.FromSlash(target), name)
	default:
		return nil
	}
}

func removeExisting(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return root.RemoveAll(name)
	}
	return root.Remove(name)
}
