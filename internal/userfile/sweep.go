package userfile

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbridge/imgutil/internal/owner"
)

// OwnedPattern is a temp name pattern for an entry this process owns,
// prefix<owner token>: SweepStale removes it once its owner is gone
// (killed, or a caller that never closed what made it), or once it is
// unchanged past owner.FileLimit, whoever judges (see package owner).
func OwnedPattern(prefix string) string { return owner.Pattern(prefix) }

// SweepStale removes the entries of dir named prefix<owner token> that are
// stale (see package owner): their owner is gone, or they are unchanged
// past owner.FileLimit. An entry whose owner may still use it, or whose
// name says nothing of its owner, is left alone.
func SweepStale(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		token, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		if owner.Stale(token, info.ModTime(), owner.FileLimit) {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
