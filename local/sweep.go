package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// tempPrefix starts the names of the directories where Stores keep layers
// read from the daemon: imgutil-local-<pid>-<random>. The pid lets a later
// process remove the directory of one that exited without Close (callers
// written for the existing library never call it).
const tempPrefix = "imgutil-local-"

// layerDir creates this process's directory for layers read from the
// daemon, after removing those left by processes that are gone.
func layerDir() (string, error) {
	sweepOnce.Do(sweepStale)
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-*", tempPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("creating layer directory: %w", err)
	}
	return dir, nil
}

var sweepOnce sync.Once

// sweepStale removes the layer directories of processes that no longer
// run. A directory whose process may still run (or whose name says
// nothing) is left alone.
func sweepStale() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}
