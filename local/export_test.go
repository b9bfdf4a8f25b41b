package local

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"os"
	"time"

	"github.com/imgbridge/imgutil/internal/archive"

	"github.com/imgbridge/imgutil/internal/owner"
	"github.com/imgbridge/imgutil/internal/userfile"
)

// SweepStale removes stale layer directories, as a Store does before
// making its own.
func SweepStale() { userfile.SweepStale(os.TempDir(), tempPrefix) }

// SetProbeMinSize sets the image size from which GetLayer of images in s
// uses a probe image.
func SetProbeMinSize(s *Store, n int64) { s.probeMinSize = n }

// OwnedTagOf is the tag a process pid of this pid space (another space,
// one of a container sharing our hostname, when foreign) gives its
// short-lived names at time t.
func OwnedTagOf(pid int, t time.Time, foreign bool) string {
	tag := owner.TokenFor(pid, t)
	if foreign {
		tag = "000000000000" + tag[12:]
	}
	return tag
}

// RecordName records tag in the ledger of names given in the daemon at
// host (see nameLedger), as the process that gave an image a name with
// that tag there does.
func RecordName(host, tag string) { newNameLedger(host).made(tag) }

// SweepNever makes s sweep after its first save only when its ledger
// holds a record of a killed process's name.
func SweepNever(s *Store) { s.sweepOdds = 0 }

// LedgerDirEnv is ledgerDirEnv.
const LedgerDirEnv = ledgerDirEnv

// KeepLayerFiles makes s keep the layers it reads as named files in its
// directory, as it does where they cannot be kept open and unlinked
// (macOS, Windows, Linux without /proc).
func KeepLayerFiles(s *Store) { s.fetcher.unlink = false }

// OCIArchive is the entries of an OCI-layout archive holding blobs, the
// config rawConfig and the manifest m, indexed under name (see ociLayout).
func OCIArchive(blobs []archive.Entry, m v1.Manifest, rawConfig []byte, name string) ([]archive.Entry, error) {
	entries, _, _, err := ociLayout(blobs, m, rawConfig, func(v1.Hash, []byte) map[string]string {
		return map[string]string{"io.containerd.image.name": name}
	})
	return entries, err
}
