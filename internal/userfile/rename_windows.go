package userfile

import (
	"errors"
	"syscall"
)

// renameBusy reports a rename Windows refused because the target (or the
// source) is open in a process that did not allow its deletion: a reader
// that will soon close it.
func renameBusy(err error) bool {
	const errorSharingViolation syscall.Errno = 32
	return errors.Is(err, syscall.ERROR_ACCESS_DENIED) || errors.Is(err, errorSharingViolation) || errors.Is(err, errBusy)
}
