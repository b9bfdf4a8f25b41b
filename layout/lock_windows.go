package layout

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// lockName is the file in a layout directory whose lock saves take on
// Windows, where a directory cannot be locked; it is removed by the last
// save to release it (Windows refuses while another holds it open).
const lockName = ".imgutil-lock"

var procLockFileEx = syscall.NewLazyDLL("kernel32.dll").NewProc("LockFileEx")

// lockfileExclusiveLock is LockFileEx's flag for an exclusive lock that
// waits.
const lockfileExclusiveLock = 0x2

// lockDir takes an exclusive lock (LockFileEx, released by Windows if the
// process dies) on the lock file of the directory dir, and returns its
// release and what the directory locked is.
func lockDir(dir string) (release func(), locked fs.FileInfo, err error) {
	d, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, lockName)
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
		f.Close() // closing the handle releases its lock
		_ = os.Remove(path)
	}, d, nil
}
