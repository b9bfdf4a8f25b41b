package local

import (
	"fmt"
	"os"

	"github.com/imgbridge/imgutil/internal/userfile"
)

// tempPrefix starts the names of the directories where Stores keep layers
// read from the daemon: imgutil-local-<pid>-<random>. The pid lets a later
// process remove the directory of one that exited without Close (callers
// written for the existing library never call it).
const tempPrefix = "imgutil-local-"

// layerDir creates a Store's directory for layers read from the daemon
// (once per Store), after removing those left by processes that are gone.
func layerDir() (string, error) {
	userfile.SweepStale(os.TempDir(), tempPrefix)
	dir, err := os.MkdirTemp("", userfile.OwnedPattern(tempPrefix))
	if err != nil {
		return "", fmt.Errorf("creating layer directory: %w", err)
	}
	return dir, nil
}
