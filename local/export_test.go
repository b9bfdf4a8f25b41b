package local

import (
	"fmt"
	"os"
	"time"

	"github.com/imgbridge/imgutil/internal/userfile"
)

// SweepStale removes stale layer directories, as a Store does before
// making its own.
func SweepStale() { userfile.SweepStale(os.TempDir(), tempPrefix) }

// SetProbeMinSize sets the image size from which GetLayer of images in s
// uses a probe image.
func SetProbeMinSize(s *Store, n int64) { s.probeMinSize = n }

// OwnedTagOf is the tag a process pid of this host (another host when
// foreign) gives its short-lived names at time t.
func OwnedTagOf(pid int, t time.Time, foreign bool) string {
	host := hostID()
	if foreign {
		host = "00000000"
	}
	return fmt.Sprintf("%s-%d-%d-%s", host, pid, t.Unix(), "testtest")
}
