package owner

import (
	"errors"
	"syscall"
	"time"
)

// procRoot is unused on Windows.
const procRoot = ""

// Windows' answers used here.
const (
	processQueryLimitedInformation = 0x1000
	stillActive                    = 259
	errorInvalidParameter          = syscall.Errno(87)
)

// spaceParts names this process's pid space: Windows has one per machine
// (the hostname, hashed with these, tells machines and containers apart);
// a pid reused after a reboot is caught by its start time.
func spaceParts(string) ([]string, bool) { return []string{"windows"}, true }

// running reports whether a process has pid: only "invalid parameter"
// (no such process) or an exit code says no; a process we may not open
// runs.
func running(pid int) bool {
	h, err := syscall.OpenProcess(processQueryLimitedInformation, false, uint32(pid))
	if err != nil {
		return !errors.Is(err, errorInvalidParameter)
	}
	defer syscall.CloseHandle(h) //nolint:errcheck // read-only handle
	var code uint32
	if err := syscall.GetExitCodeProcess(h, &code); err != nil {
		return true
	}
	return code == stillActive
}

// started is when process pid was created.
func started(_ string, pid int) (time.Time, bool) {
	h, err := syscall.OpenProcess(processQueryLimitedInformation, false, uint32(pid))
	if err != nil {
		return time.Time{}, false
	}
	defer syscall.CloseHandle(h) //nolint:errcheck // read-only handle
	var created, exited, kernel, user syscall.Filetime
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, created.Nanoseconds()), true
}
