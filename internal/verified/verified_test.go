package verified_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/verified"
)

func TestARecordHoldsWhileTheFileStaysAsItWas(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("records are kept on Linux only")
	}
	dir := t.TempDir()
	t.Setenv(verified.CacheEnv, dir)
	records := verified.FromEnv()
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if records.Known(fi, d) {
		t.Fatal("a file never checked is known")
	}
	records.Remember(fi, d)
	if !records.Known(fi, d) {
		t.Fatal("a file just recorded is not known")
	}
	if !verified.New(dir).Known(fi, d) {
		t.Fatal("records of another owner on the same directory do not know a file recorded there")
	}
	if verified.New("").Known(fi, d) {
		t.Fatal("records kept in memory know a file another owner recorded")
	}
	other := d
	other.Hex = "0" + d.Hex[1:]
	if records.Known(fi, other) {
		t.Fatal("a file is known under another digest")
	}
	// Rewritten with the same size: its change time moves.
	if err := os.WriteFile(p, []byte("CONTENT"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err = os.Lstat(p); err != nil {
		t.Fatal(err)
	}
	if records.Known(fi, d) {
		t.Fatal("a file rewritten since its record is still known")
	}
}

func TestNilRecordsRecordNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"}
	var none *verified.Records
	none.Remember(fi, d)
	if none.Known(fi, d) {
		t.Fatal("nil records know a file")
	}
}
