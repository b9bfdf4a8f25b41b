package layout

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// lockSuffix names the file beside a layout directory whose lock saves
// take on Windows, where a directory cannot be locked (beside it, not in
// it: a layout holds only its own files); the last save to release it
// removes it (Windows refuses while another holds it open).
const lockSuffix = ".imgutil-lock"

var (
	kernel32         = syscall.NewLazyDLL("kernel32.dll")
	procLockFileEx   = kernel32.NewProc("LockFileEx")
	procUnlockFileEx = kernel32.NewProc("UnlockFileEx")
)

// lockfileExclusiveLock is LockFileEx's flag for an exclusive lock that
// waits.
const lockfileExclusiveLock = 0x2

// lockDir takes an exclusive lock (LockFileEx, released by Windows if the
// process dies) on the lock file beside the directory dir, and returns its
// release and what the directory locked is.
func lockDir(dir string) (release func(), locked fs.FileInfo, err error) {
	d, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Clean(dir) + lockSuffix
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, nil, err
	}
	var ol syscall.Overlapped
	r, _, e := procLockFileEx.Call(f.Fd(), lockfileExclusiveLock, 0, 1, 0, uintptr(unsafe.Pointer(&ol)))
	if r == 0 {
		f.Close()
		return nil, nil, e
	}
	return func() {
		// Unlocked before the handle closes: a lock left to the close
		// may be released late.
		var ol syscall.Overlapped
		_, _, _ = procUnlockFileEx.Call(f.Fd(), 0, 1, 0, uintptr(unsafe.Pointer(&ol)))
		f.Close()
		_ = os.Remove(path)
	}, d, nil
}
