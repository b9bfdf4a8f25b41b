//go:build !windows

package owner

import (
	"errors"
	"syscall"
)

// running reports whether a process of this pid namespace has pid: only
// "no such process" says no (a process we may not signal runs).
func running(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
