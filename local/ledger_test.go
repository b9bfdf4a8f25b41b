package local

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/imgbridge/imgutil/internal/owner"
)

// TestLedger: a record stays while its owner may use the name, is stale
// once the owner is gone (or the record is past the limit), and is gone
// once removed; a ledger that cannot be kept says so.
func TestLedger(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("starts true")
	}
	t.Setenv(ledgerDirEnv, filepath.Join(t.TempDir(), "names"))
	l := newNameLedger("unix:///daemon.sock")
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
	if _, ok := newNameLedger("unix:///daemon.sock").stale(); ok {
		t.Error("a ledger turned off says it was read")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ledgerDirEnv, filepath.Join(file, "names"))
	if _, ok := newNameLedger("unix:///daemon.sock").stale(); ok {
		t.Error("a ledger that cannot be made says it was read")
	}
}

// TestDroppedWords: the daemon's words for a load it dropped (seen on
// moby's containerd store under prunes and garbage collections) match
// ErrLoadDropped; a refusal or a failure of another kind does not.
func TestDroppedWords(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{`failed to ingest "index.json": failed to open writer: lease does not exist: not found`, true},
		{`failed to ingest "blobs/sha256/73aa": failed commit on ref "tar-blobs/sha256/73aa": commit failed: lease does not exist: not found`, true},
		{`write docker manifest: failed commit on ref "manifest-sha256:7748": commit failed: rename /x/ingest/a/data /x/blobs/sha256/7748: no such file or directory`, true},
		{`rpc error: code = NotFound desc = content digest sha256:3882: not found`, true},
		{`Error response from daemon: NotFound: lease "630820740-WxYz": not found`, true},
		{`failed to resolve layers: failed to open "blobs/sha256/5c42" (sha256:5c42): NotFound: content digest sha256:5c42: not found`, true},
		{`failed to ingest "blobs/sha256/73aa": write /x/ingest/a/data: no space left on device`, false},
		{`payload does not match any of the supported image formats: layer tarfiles are missing`, false},
		{`invalid tar header`, false},
	} {
		got := errors.Is(dropped(errors.New(c.msg)), ErrLoadDropped)
		if got != c.want {
			t.Errorf("dropped(%q) matches ErrLoadDropped: %v, want %v", c.msg, got, c.want)
		}
	}
}
