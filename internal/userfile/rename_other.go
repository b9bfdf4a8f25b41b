//go:build !windows

package userfile

import "errors"

// renameBusy: elsewhere a rename replaces a file whoever has it open.
func renameBusy(err error) bool { return errors.Is(err, errBusy) }
