//go:build !windows

package layout

import (
	"io/fs"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the directory dir (flock: released
// by the kernel if the process dies) and returns its release and what
// the directory locked is.
func lockDir(dir string) (release func(), locked fs.FileInfo, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, nil, err
	}
	release = func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
	if locked, err = f.Stat(); err != nil {
		release()
		return nil, nil, err
	}
	return release, locked, nil
}
