package owner

import (
	"errors"
	"syscall"
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

// startOf is when process pid was created (100 ns units since 1601), 0
// if it cannot be asked.
func startOf(_ string, pid int) int64 {
	h, err := syscall.OpenProcess(processQueryLimitedInformation, false, uint32(pid))
	if err != nil {
		return 0
	}
	defer syscall.CloseHandle(h) //nolint:errcheck // read-only handle
	var created, exited, kernel, user syscall.Filetime
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0
	}
	return int64(created.HighDateTime)<<32 | int64(created.LowDateTime)
}
