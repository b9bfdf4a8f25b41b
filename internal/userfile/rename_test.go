package userfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Replace puts the new file over the old one, also while the old one is
// open (as a reader of index.json has it).
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "new"), filepath.Join(dir, "index.json")
	write(t, src, "new")
	write(t, dst, "old")
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Replace(src, dst); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dst); got != "new" {
		t.Errorf("dst holds %q", got)
	}
}

// The Windows branch, forced: a rename refused as busy is tried again until
// it passes, or until patience runs out; another error is the answer at once.
func TestReplaceWaitsForABusyTarget(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "new"), filepath.Join(dir, "old")
	write(t, src, "new")
	write(t, dst, "old")
	tries := 0
	busyTwice := func(a, b string) error {
		if tries++; tries <= 2 {
			return &os.LinkError{Op: "rename", Old: a, New: b, Err: errBusy}
		}
		return os.Rename(a, b)
	}
	if err := replace(src, dst, busyTwice, renameBusy, time.Second); err != nil || tries != 3 {
		t.Fatalf("replace = %v after %d tries, want nil after 3", err, tries)
	}
	if got := read(t, dst); got != "new" {
		t.Errorf("dst holds %q", got)
	}

	tries = 0
	alwaysBusy := func(a, b string) error { tries++; return &os.LinkError{Op: "rename", Old: a, New: b, Err: errBusy} }
	start := time.Now()
	if err := replace(src, dst, alwaysBusy, renameBusy, 50*time.Millisecond); !errors.Is(err, errBusy) {
		t.Errorf("replace of a target busy for good = %v", err)
	}
	if time.Since(start) > time.Second || tries < 2 {
		t.Errorf("gave up after %v and %d tries", time.Since(start), tries)
	}

	tries = 0
	refused := errors.New("refused")
	other := func(string, string) error { tries++; return refused }
	if err := replace(src, dst, other, renameBusy, time.Second); !errors.Is(err, refused) || tries != 1 {
		t.Errorf("replace = %v after %d tries, want refused after 1", err, tries)
	}
}

// Place of content whose name another writer took first keeps theirs (the
// same bytes, perhaps open in a reader) and removes ours.
func TestPlaceKeepsTheContentThere(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "partial"), filepath.Join(dir, "sha256-abc")
	write(t, src, "same")
	write(t, dst, "same")
	alwaysBusy := func(a, b string) error { return &os.LinkError{Op: "rename", Old: a, New: b, Err: errBusy} }
	if err := place(src, dst, alwaysBusy, renameBusy, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial file is left: %v", err)
	}
	if got := read(t, dst); got != "same" {
		t.Errorf("dst holds %q", got)
	}
	// With nothing there, a refusal is the answer.
	write(t, src, "x")
	if err := place(src, filepath.Join(dir, "none"), alwaysBusy, renameBusy, 20*time.Millisecond); !errors.Is(err, errBusy) {
		t.Errorf("place = %v", err)
	}
}
