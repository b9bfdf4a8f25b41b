package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

func mismatch(path string, want, got v1.Hash) error {
	if got != want {
		return fmt.Errorf("layer file %s has sha256 %s, not %s: %w", path, got, want, imgerr.ErrDiffIDMismatch)
	}
	return nil
}

// check queues a region of the archive to be hashed against its digest;
// it fails when an earlier check has.
func (t *tarWriter) check(c check) error {
	if t.checks == nil {
		t.checks = make(chan check, 64)
		t.result = make(chan error, verifiers)
		for range verifiers {
			go t.verify(t.checks, t.result)
		}
	}
	if err := t.failed.Load(); err != nil {
		return *err
	}
	t.checks <- c
	return nil
}

// verifiers is how many regions are hashed at once: sha256 (about 1.6
// GB/s a core) is slower than the kernel's copy, so several layers are
// checked side by side.
var verifiers = max(1, min(runtime.GOMAXPROCS(0), 4))

// verify hashes each region it takes, reading it back from the file; a
// mismatch is recorded (no more regions are read by anyone) and each
// verifier sends its first failure, or nil, once the queue is closed.
func (t *tarWriter) verify(checks <-chan check, result chan<- error) {
	buf := make([]byte, 1<<20)
	var failed error
	for c := range checks {
		if failed != nil || t.failed.Load() != nil {
			continue
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(t.out, c.off, c.size), buf); err != nil {
			failed = fmt.Errorf("reading back %s: %w", c.name, err)
		} else {
			failed = mismatch(c.name, c.want, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))})
			if failed == nil && c.fi != nil {
				c.records.Remember(c.fi, c.want)
			}
		}
		if failed != nil {
			t.failed.Store(&failed)
		}
	}
	result <- failed
}

// wait returns once every queued check is done, with the first failure.
func (t *tarWriter) wait() error {
	if t.checks == nil {
		return nil
	}
	close(t.checks)
	t.checks = nil
	var first error
	for range verifiers {
		if err := <-t.result; first == nil {
			first = err
		}
	}
	t.result = nil
	return first
}

// abort stops the checks after a failed write.
func (t *tarWriter) abort() { _ = t.wait() }
