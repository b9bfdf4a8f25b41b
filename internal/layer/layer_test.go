package layer_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

type entry struct {
	name, link, body string
	typ              byte
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestScan(t *testing.T) {
	plain := makeTar(t, entry{name: "a/b", body: "hello"}, entry{name: "a/l", link: "/etc/x", typ: tar.TypeSymlink})
	compressed := gz(t, plain)
	for _, tc := range []struct {
		name   string
		in     []byte
		gzip   bool
		digest string
	}{
		{"plain", plain, false, sha(plain)},
		{"gzip", compressed, true, sha(compressed)},
	} {
		info, err := layer.Scan(bytes.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: Scan: %v", tc.name, err)
		}
		if info.DiffID.String() != sha(plain) || info.Size != int64(len(plain)) {
			t.Errorf("%s: DiffID, Size = %s, %d; want %s, %d", tc.name, info.DiffID, info.Size, sha(plain), len(plain))
		}
		if info.Gzip != tc.gzip || info.Digest.String() != tc.digest || info.FileSize != int64(len(tc.in)) {
			t.Errorf("%s: Gzip, Digest, FileSize = %v, %s, %d", tc.name, info.Gzip, info.Digest, info.FileSize)
		}
	}
	if _, err := layer.Scan(bytes.NewReader([]byte("not a tar at all, not even close............"))); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("Scan(garbage) = %v, want ErrInvalidArgument", err)
	}
}

func TestCheckHeader(t *testing.T) {
	for _, tc := range []struct {
		e  entry
		ok bool
	}{
		{entry{name: "usr/bin/x"}, true},
		{entry{name: "./usr/bin/x"}, true},
		{entry{name: "a/../b"}, true},
		{entry{name: "../x"}, false},
		{entry{name: "a/../../x"}, false},
		{entry{name: "/etc/passwd"}, true},
		{entry{name: "/layers/bp/layer/"}, true},
		{entry{name: "/../etc/passwd"}, false},
		{entry{name: "//a/../../x"}, false},
		{entry{name: "/"}, true},
		{entry{name: "bin/sh", link: "/usr/bin/busybox", typ: tar.TypeSymlink}, true},
		{entry{name: "lib/x", link: "../usr/lib/x", typ: tar.TypeSymlink}, true},
		{entry{name: "lib/x", link: "../../etc/shadow", typ: tar.TypeSymlink}, false},
		{entry{name: "h", link: "usr/bin/x", typ: tar.TypeLink}, true},
		{entry{name: "h", link: "../outside", typ: tar.TypeLink}, false},
		{entry{name: "h", link: "/etc/passwd", typ: tar.TypeLink}, true},
		{entry{name: "/a/h", link: "/a/../../x", typ: tar.TypeLink}, false},
		{entry{name: "/lib/x", link: "../usr/lib/x", typ: tar.TypeSymlink}, true},
		{entry{name: "/lib/x", link: "../../etc", typ: tar.TypeSymlink}, false},
	} {
		typ := tc.e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		err := layer.CheckHeader(&tar.Header{Name: tc.e.name, Linkname: tc.e.link, Typeflag: typ})
		if tc.ok && err != nil {
			t.Errorf("CheckHeader(%q -> %q) = %v, want nil", tc.e.name, tc.e.link, err)
		}
		if !tc.ok && !errors.Is(err, imgutil.ErrUnsafeTar) {
			t.Errorf("CheckHeader(%q -> %q) = %v, want ErrUnsafeTar", tc.e.name, tc.e.link, err)
		}
	}
}

func TestExtract(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ok := makeTar(t, entry{name: "a/b/c", body: "c"}, entry{name: "a/link", link: "b/c", typ: tar.TypeSymlink},
		entry{name: "a/hard", link: "a/b/c", typ: tar.TypeLink}, entry{name: "a/b/c", body: "again"})
	if err := layer.Extract(bytes.NewReader(ok), root); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "a", "link")); string(b) != "again" {
		t.Errorf("a/link reads %q, want again", b)
	}

	// An absolute symlink followed by a write through it must stay inside.
	evil := makeTar(t, entry{name: "esc", link: outside, typ: tar.TypeSymlink}, entry{name: "esc/pwned", body: "x"})
	err := layer.Extract(bytes.NewReader(evil), root)
	if err == nil {
		t.Errorf("Extract through an escaping symlink succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatalf("Extract wrote outside its root")
	}
	// Absolute names (as build tools write them) land under the root.
	abs := makeTar(t, entry{name: "/layers/", typ: tar.TypeDir}, entry{name: "/layers/f", body: "f"},
		entry{name: "/layers/h", link: "/layers/f", typ: tar.TypeLink})
	if err := layer.Extract(bytes.NewReader(abs), root); err != nil {
		t.Fatalf("Extract(absolute names): %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "layers", "h")); string(b) != "f" {
		t.Errorf("layers/h reads %q, want f", b)
	}
	for _, bad := range [][]byte{
		makeTar(t, entry{name: "../x", body: "x"}),
		makeTar(t, entry{name: "/../abs", body: "x"}),
	} {
		if err := layer.Extract(bytes.NewReader(bad), root); !errors.Is(err, imgutil.ErrUnsafeTar) {
			t.Errorf("Extract(unsafe) = %v, want ErrUnsafeTar", err)
		}
	}
}

func TestWriteDirIsReproducible(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x", "y", "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("y/f", filepath.Join(dir, "x", "l")); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	for _, buf := range []*bytes.Buffer{&a, &b} {
		if err := layer.WriteDir(buf, dir, "workspace", imgutil.NormalizedDateTime); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same tree differ")
	}
	tr := tar.NewReader(&a)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	want := []string{"workspace/", "workspace/x/", "workspace/x/l", "workspace/x/y/", "workspace/x/y/f"}
	if len(names) != len(want) {
		t.Fatalf("entries = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries = %v, want %v", names, want)
		}
	}
}

func TestFileDigestComputedOnce(t *testing.T) {
	plain := makeTar(t, entry{name: "f", body: "content"})
	path := filepath.Join(t.TempDir(), "l.tar")
	if err := os.WriteFile(path, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := layer.FromFile(path, types.OCILayer, layer.Caches{})
	if err != nil {
		t.Fatal(err)
	}
	if _, known := f.KnownDigest(); known {
		t.Fatal("digest of a plain file known before compressing")
	}
	var buf bytes.Buffer
	d, n, err := f.WriteCompressed(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != sha(buf.Bytes()) || n != int64(buf.Len()) {
		t.Fatalf("WriteCompressed = %s, %d; bytes hash to %s, %d", d, n, sha(buf.Bytes()), buf.Len())
	}
	if got, known := f.KnownDigest(); !known || got != d {
		t.Fatalf("KnownDigest after writing = %s, %v; want %s, true", got, known, d)
	}
	// Another media type of the same file shares what is known.
	other := f.WithMediaType(types.DockerLayer)
	if got, _ := other.Digest(); got != d {
		t.Fatalf("Digest of the Docker-typed view = %s, want %s", got, d)
	}
}

func TestFromFileWithDiffIDVerifiesWhileReading(t *testing.T) {
	plain := makeTar(t, entry{name: "f", body: "content"})
	path := filepath.Join(t.TempDir(), "l.tar")
	if err := os.WriteFile(path, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := v1.NewHash(sha(plain))
	if err != nil {
		t.Fatal(err)
	}
	l, err := layer.FromFileWithDiffID(path, good, types.OCILayer, layer.Caches{})
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := l.Uncompressed()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("reading a layer with the right diffID: %v", err)
	}
	rc.Close()

	wrong := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(make([]byte, 32))}
	l, err = layer.FromFileWithDiffID(path, wrong, types.OCILayer, layer.Caches{})
	if err != nil {
		t.Fatalf("FromFileWithDiffID reads no content, yet failed: %v", err)
	}
	for _, open := range []func() (io.ReadCloser, error){l.Uncompressed, l.Compressed} {
		rc, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); !errors.Is(err, imgutil.ErrDiffIDMismatch) {
			t.Errorf("reading a layer with a wrong diffID = %v, want ErrDiffIDMismatch", err)
		}
		rc.Close()
	}
	if _, err := layer.FromFileWithDiffID(writeTemp(t, makeTar(t, entry{name: "../x", body: "x"})), wrong, types.OCILayer, layer.Caches{}); !errors.Is(err, imgutil.ErrUnsafeTar) {
		t.Errorf("FromFileWithDiffID(unsafe tar) = %v, want ErrUnsafeTar", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompressionIsDeterministic: the same layer bytes always give the same
// compressed bytes (reproducible builds push the same digests), pinned for
// this version of the module by a golden digest.
func TestCompressionIsDeterministic(t *testing.T) {
	var content strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&content, "line %d of a reproducible layer\n", i)
	}
	path := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(path, makeTar(t, entry{name: "app/data.txt", body: content.String()}), 0o644); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for range 2 {
		l, err := layer.FromFile(path, types.OCILayer, layer.Caches{})
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := l.WriteCompressed(io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two compressions differ: %v", digests)
	}
	const golden = "sha256:29de6410b2c90307a5b3b03c77434dfd35f947fb62f87c74c94c714d8d1ed117"
	if digests[0] != golden {
		t.Errorf("compressed digest = %s, want %s: the compressor's output changed", digests[0], golden)
	}
}
