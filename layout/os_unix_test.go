//go:build !windows

package layout_test

import (
	"io/fs"
	"syscall"
)

// syncAll writes every dirty page to disk.
func syncAll() { syscall.Sync() }

// umask is the process's file mode creation mask.
func umask() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}
