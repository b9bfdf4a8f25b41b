package userfile

import (
	"errors"
	"os"
	"time"
)

// Replace renames src to dst, replacing a dst that exists: a reader of dst
// sees the old file or the new, whole. Where a file open elsewhere cannot
// be replaced at once (Windows, while another process reads dst), it tries
// again for a while before it fails.
func Replace(src, dst string) error {
	return replace(src, dst, os.Rename, renameBusy, 2*time.Second)
}

func replace(src, dst string, rename func(string, string) error, busy func(error) bool, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	wait := 5 * time.Millisecond
	for {
		err := rename(src, dst)
		if err == nil || !busy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Place gives the complete file src the name dst, which is named after its
// content (a digest): when dst exists already (another writer placed the
// same content first, and may be reading it), src is removed and dst kept.
func Place(src, dst string) error {
	return place(src, dst, os.Rename, renameBusy, 2*time.Second)
}

func place(src, dst string, rename func(string, string) error, busy func(error) bool, patience time.Duration) error {
	err := rename(src, dst)
	if err != nil && busy(err) {
		// Busy: most likely another writer's copy, being read.
		if _, serr := os.Lstat(dst); serr == nil {
			return os.Remove(src)
		}
		err = replace(src, dst, rename, busy, patience)
	}
	if err == nil {
		return nil
	}
	if _, serr := os.Lstat(dst); serr == nil {
		return os.Remove(src)
	}
	return err
}

// errBusy stands for the OS's "in use" in tests.
var errBusy = errors.New("in use")
