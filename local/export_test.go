package local

import (
	"fmt"
	"time"
)

// SweepStale exposes the removal of stale layer directories to the tests.
var SweepStale = sweepStale

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
