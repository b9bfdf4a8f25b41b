package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/imgbridge/imgutil/internal/owner"
)

// TestLedger: a record stays while its owner may use the name, is stale
// once the owner is gone (or the record is past the limit), and is gone
// once removed; a ledger that cannot be kept says so.
func TestLedger(t *testing.T) {
	t.Setenv(ledgerDirEnv, filepath.Join(t.TempDir(), "names"))
	l := newNameLedger()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	ours, dead := ownedTag(), owner.TokenFor(gone.Process.Pid, time.Now())
	old := owner.TokenFor(os.Getpid(), time.Now().Add(-2*owner.TagLimit))
	for _, tag := range []string{ours, dead, old} {
		l.made(tag)
	}
	stale, ok := l.stale()
	slices.Sort(stale)
	want := []string{dead, old}
	slices.Sort(want)
	if !ok || !slices.Equal(stale, want) {
		t.Fatalf("stale() = %v, %v; want %v", stale, ok, want)
	}
	l.removed(dead)
	l.removed(old)
	if stale, _ := l.stale(); len(stale) != 0 {
		t.Errorf("after removal, stale() = %v", stale)
	}
	l.removed(ours)

	t.Setenv(ledgerDirEnv, "off")
	if _, ok := newNameLedger().stale(); ok {
		t.Error("a ledger turned off says it was read")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ledgerDirEnv, filepath.Join(file, "names"))
	if _, ok := newNameLedger().stale(); ok {
		t.Error("a ledger that cannot be made says it was read")
	}
}
