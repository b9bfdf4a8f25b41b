package layout_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

// TestDiskFull saves onto a tiny tmpfs: the save fails with ENOSPC inside
// a SaveError, and leaves neither the new layout nor a temp file behind.
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a small tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })

	target := filepath.Join(mnt, "image")
	img, err := layout.NewImage(target)
	must(t, err)
	l, _ := testhelpers.RandomLayerFile(t, 2<<20)
	must(t, img.AddLayer(l))
	err = img.Save()
	var se imgutil.SaveError
	if !errors.As(err, &se) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Save onto a full disk = %v, want a SaveError matching ENOSPC", err)
	}
	entries, err := os.ReadDir(mnt)
	must(t, err)
	for _, e := range entries {
		t.Errorf("a failed save left %s on the full disk", e.Name())
	}
}
