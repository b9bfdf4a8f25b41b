package userfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// OwnedPattern is a temp name pattern for an entry this process owns,
// prefix<pid>-*: SweepStale removes it once the process is gone (killed,
// or a caller that never closed what made it).
func OwnedPattern(prefix string) string { return prefix + strconv.Itoa(os.Getpid()) + "-*" }

// SweepStale removes the entries of dir named prefix<pid>-... whose
// process no longer runs. An entry whose process may still run, or whose
// name says nothing, is left alone.
func SweepStale(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if ProcessGone(pid) {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// ProcessGone reports whether no process of this host (its pid namespace)
// runs as pid.
func ProcessGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
