package layer_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

// FuzzExtract feeds arbitrary bytes, and tars of arbitrary entries, to the
// tar checks and the extractor: nothing may ever be written outside the
// extraction root, and every failure must be a matchable error.
func FuzzExtract(f *testing.F) {
	for _, seed := range [][]entry{
		{{name: "a/b", body: "x"}},
		{{name: "../x", body: "x"}},
		{{name: "/abs", body: "x"}},
		{{name: "l", link: "/outside", typ: tar.TypeSymlink}, {name: "l/x", body: "x"}},
		{{name: "l", link: "../..", typ: tar.TypeSymlink}, {name: "l/x", body: "x"}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d/h", link: "../../etc/passwd", typ: tar.TypeLink}},
		{{name: "a", body: "1"}, {name: "a", body: "2"}},
	} {
		f.Add(makeTar(f, seed...))
	}
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		_, scanErr := layer.Scan(bytes.NewReader(data))
		if scanErr != nil && !errors.Is(scanErr, imgutil.ErrInvalidArgument) {
			t.Fatalf("Scan error is not ErrInvalidArgument: %v", scanErr)
		}
		err := layer.Extract(bytes.NewReader(data), root)
		if scanErr != nil && err == nil && errors.Is(scanErr, imgutil.ErrUnsafeTar) {
			t.Fatalf("Scan found an unsafe entry (%v) that Extract accepted", scanErr)
		}
		// Nothing but root may appear in dir.
		entries, rerr := os.ReadDir(dir)
		if rerr != nil {
			t.Fatal(rerr)
		}
		for _, e := range entries {
			if e.Name() != "root" {
				t.Fatalf("extraction wrote %q outside its root (err %v)", e.Name(), err)
			}
		}
		// Every symlink under root was written as the tar said; no regular
		// file may resolve outside root.
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, werr error) error {
			if werr != nil || d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			real, rerr := filepath.EvalSymlinks(p)
			if rerr == nil && !strings.HasPrefix(real+string(filepath.Separator), root+string(filepath.Separator)) && real != root {
				t.Fatalf("%s resolves outside the root: %s", p, real)
			}
			return nil
		})
	})
}

// FuzzScan feeds arbitrary bytes to Scan: it must never panic or hang, and
// every failure must match imgutil.ErrInvalidArgument.
func FuzzScan(f *testing.F) {
	f.Add(makeTar(f, entry{name: "a/b", body: "x"}))
	f.Add(makeTar(f, entry{name: "../x", body: "x"}))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := layer.Scan(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, imgutil.ErrInvalidArgument) {
				t.Fatalf("Scan error is not ErrInvalidArgument: %v", err)
			}
			return
		}
		if info.FileSize != int64(len(data)) {
			t.Fatalf("Scan read %d bytes of %d", info.FileSize, len(data))
		}
	})
}

// FuzzCheckHeader: whatever entry CheckHeader accepts stays inside the
// root: its name, a hard link's target, a relative symlink's target.
func FuzzCheckHeader(f *testing.F) {
	f.Add("a/b", "", byte(tar.TypeReg))
	f.Add("a/../../x", "", byte(tar.TypeReg))
	f.Add("l", "../../etc", byte(tar.TypeSymlink))
	f.Add("h", "a/../../x", byte(tar.TypeLink))
	f.Fuzz(func(t *testing.T, name, link string, typ byte) {
		err := layer.CheckHeader(&tar.Header{Name: name, Linkname: link, Typeflag: typ})
		if err != nil {
			if !errors.Is(err, imgutil.ErrUnsafeTar) {
				t.Fatalf("CheckHeader error is not ErrUnsafeTar: %v", err)
			}
			return
		}
		root := "/root-of-extraction"
		inside := func(p string) bool {
			return p == root || strings.HasPrefix(p, root+"/")
		}
		// Names apply relative to the root, absolute or not.
		if p := path.Join(root, strings.TrimLeft(name, "/")); !inside(p) {
			t.Fatalf("accepted name %q lands at %s", name, p)
		}
		switch typ {
		case tar.TypeLink:
			if p := path.Join(root, strings.TrimLeft(link, "/")); !inside(p) {
				t.Fatalf("accepted hard link %q -> %q lands at %s", name, link, p)
			}
		case tar.TypeSymlink:
			if !strings.HasPrefix(link, "/") {
				if p := path.Join(root, path.Dir(strings.TrimLeft(name, "/")), link); !inside(p) {
					t.Fatalf("accepted symlink %q -> %q resolves to %s", name, link, p)
				}
			}
		}
	})
}
