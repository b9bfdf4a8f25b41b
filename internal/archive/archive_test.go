package archive

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgbridge/imgutil/internal/owner"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// TestWriteFileSweepsPartialsOfDeadProcesses: an archive left half-written
// by a killed process (named with its pid) is removed by the next write in
// that directory; one of a live process is not.
func TestWriteFileSweepsPartialsOfDeadProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, partialPrefix+owner.TokenFor(cmd.Process.Pid, time.Now()))
	live := filepath.Join(dir, partialPrefix+owner.TokenFor(os.Getppid(), time.Now()))
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := WriteFile(context.Background(), dir, "out-*.tar", []Entry{{Name: "a", Size: 1, Data: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial archive of a dead process is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the partial archive of a live process was removed: %v", err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

// TestWriteCopiesFilesAndChecksThem: a Path entry is copied (file to file)
// and, with Verify, checked; a file whose bytes do not match fails with
// ErrDiffIDMismatch and leaves no archive.
func TestWriteCopiesFilesAndChecksThem(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "layer")
	content := []byte("some layer bytes, not a multiple of 512")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	good, err := fileSum(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := WriteFile(context.Background(), dir, "ok-*.tar", []Entry{
		{Name: "first", Size: int64(len(content)), Path: src, Verify: good},
		{Name: "second", Size: int64(len(content)), Path: src},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for _, want := range []string{"first", "second"} {
		hdr, err := tr.Next()
		if err != nil || hdr.Name != want {
			t.Fatalf("entry %v, %v; want %s", hdr, err, want)
		}
		got, err := io.ReadAll(tr)
		if err != nil || string(got) != string(content) {
			t.Fatalf("entry %s holds %q (%v)", want, got, err)
		}
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the entries: %v, want EOF", err)
	}

	bad := v1.Hash{Algorithm: "sha256", Hex: good.Hex[:63] + "0"}
	if good.Hex[63] == '0' {
		bad.Hex = good.Hex[:63] + "1"
	}
	if out, err := WriteFile(context.Background(), dir, "bad-*.tar", []Entry{{Name: "x", Size: int64(len(content)), Path: src, Verify: bad}}); !errors.Is(err, imgerr.ErrDiffIDMismatch) {
		t.Fatalf("a file that does not match = %q, %v; want ErrDiffIDMismatch", out, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "bad-*"))
	partials, _ := filepath.Glob(filepath.Join(dir, partialPrefix+"*"))
	if len(left)+len(partials) > 0 {
		t.Fatalf("a failed write left %v %v", left, partials)
	}
}

func fileSum(path string) (v1.Hash, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h, _, err := v1.SHA256(f)
	return h, err
}

// TestWriteToAPipeChecksFiles: written to a pipe (nothing to read back), a
// file entry is checked as it is read.
func TestWriteToAPipeChecksFiles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "layer")
	if err := os.WriteFile(src, []byte("layer bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	good, err := fileSum(src)
	if err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Hex = "00" + good.Hex[2:]
	if bad == good {
		bad.Hex = "11" + good.Hex[2:]
	}
	for _, tc := range []struct {
		verify v1.Hash
		fails  bool
	}{{good, false}, {bad, true}} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(r)
			done <- b
		}()
		err = Write(w, []Entry{{Name: "l", Size: 11, Path: src, Verify: tc.verify}})
		w.Close()
		got := <-done
		r.Close()
		if tc.fails != errors.Is(err, imgerr.ErrDiffIDMismatch) || (!tc.fails && err != nil) {
			t.Fatalf("verify %v: Write = %v", tc.verify, err)
		}
		if !tc.fails && len(got) != 4*blockSize {
			t.Fatalf("archive is %d bytes, want %d", len(got), 4*blockSize)
		}
	}
}
