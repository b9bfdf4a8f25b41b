package layer

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// CleanName returns the root-relative, cleaned form of a tar entry name, or
// an error matching imgerr.ErrUnsafeTar when the name would land outside
// the root once applied. Names are taken relative to the root whatever their
// form: build tools write absolute names ("/layers/x", as the lifecycle and
// pack do) and "./x", and daemons apply both under the root. A ".." that
// climbs above the root refuses the name, as the daemons themselves do.
// "." names the root itself.
func CleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty entry name: %w", imgerr.ErrUnsafeTar)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q: non-portable path: %w", name, imgerr.ErrUnsafeTar)
	}
	clean := path.Clean(strings.TrimLeft(name, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q: path escapes the root: %w", name, imgerr.ErrUnsafeTar)
	}
	return clean, nil
}

// CheckHeader rejects a tar entry that could write outside the root (a name
// that climbs out, a hard link to such a name, a relative symbolic link that
// climbs out of the root) or expand far beyond its size (a sparse file).
// Absolute names, hard link names and symbolic link targets are allowed: in
// an image they resolve inside the container's root. The header itself is
// never changed: a layer passes through byte for byte.
func CheckHeader(hdr *tar.Header) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	// A sparse entry expands a few header bytes into as many zeros as it
	// declares: a bomb for whoever extracts it. Image layers have none.
	if hdr.Typeflag == tar.TypeGNUSparse {
		return fmt.Errorf("entry %q: sparse files are not accepted: %w", hdr.Name, imgerr.ErrUnsafeTar)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("entry %q: sparse files are not accepted: %w", hdr.Name, imgerr.ErrUnsafeTar)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeLink:
		if _, err := CleanName(hdr.Linkname); err != nil {
			return fmt.Errorf("hard link %q: %w", hdr.Name, err)
		}
	case tar.TypeSymlink:
		target := hdr.Linkname
		if target == "" {
			return fmt.Errorf("symlink %q has no target: %w", hdr.Name, imgerr.ErrUnsafeTar)
		}
		if !strings.HasPrefix(target, "/") {
			if _, err := CleanName(path.Join(path.Dir(name), target)); err != nil {
				return fmt.Errorf("symlink %q -> %q escapes the root: %w", hdr.Name, target, imgerr.ErrUnsafeTar)
			}
		}
	}
	return nil
}
