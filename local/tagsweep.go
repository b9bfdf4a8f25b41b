package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/owner"
)

// Repositories of the short-lived names a save or a read gives images:
// staged loads (see staged) and probes (see probeImage, learnManifests).
const (
	stagingRepo = "imgutil-staging"
	probeRepo   = "imgutil-probe"
)

// ownedTag is a tag for a short-lived name of this process: its owner
// token (see package owner), which tells a later sweep whether the name
// may still be in use.
func ownedTag() string { return owner.Token() }

// staleTag reports whether an owned tag may be removed: its owner is gone
// or it is older than owner.TagLimit (see package owner). A tag that says
// nothing of its owner is not ours to judge.
func staleTag(tag string) bool { return owner.Stale(tag, time.Time{}, owner.TagLimit) }

// imageLister is the part of the caller's client a sweep needs; the
// DockerClient interface (whose method set is fixed) lacks it, the Docker
// client has it.
type imageLister interface {
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
}

// sweepTags removes the staging and probe names that killed processes
// left in the daemon (a staged image is a complete copy of what was being
// saved), after the Store's first save, when there may be some: the
// ledger holds a record of a name whose owner is gone (a process of this
// machine or container killed), or, once in sweepOdds Stores, to remove
// the names other containers left that are past owner.TagLimit. Without a
// ledger, every first save looks. A client that cannot list images is not
// asked. Failures change nothing: the sweep only tidies.
func (s *Store) sweepTags(ctx context.Context) {
	if !s.swept.CompareAndSwap(false, true) {
		return
	}
	stale, known := s.ledger.stale()
	if known && len(stale) == 0 && (s.sweepOdds <= 0 || mrand.IntN(s.sweepOdds) != 0) {
		return
	}
	res, err := s.client.imageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("reference", stagingRepo+"/*", probeRepo+"/*"),
	})
	if err != nil {
		return
	}
	kept := map[string]bool{} // tags of stale names that could not be removed
	for _, im := range res.Items {
		for _, t := range im.RepoTags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				continue
			}
			tagged, ok := named.(reference.Tagged)
			path := reference.Path(named)
			ours := strings.HasPrefix(path, stagingRepo+"/") || strings.HasPrefix(path, probeRepo+"/")
			if !ok || !ours || reference.Domain(named) != "docker.io" || !staleTag(tagged.Tag()) {
				continue
			}
			if _, err := s.client.ImageRemove(ctx, t, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				kept[tagged.Tag()] = true
			}
		}
	}
	// A record goes once its name is gone from this daemon (the ledger is
	// this daemon's); one whose name could not be removed stays.
	for _, tag := range stale {
		if !kept[tag] {
			s.ledger.removed(tag)
		}
	}
}

// forget drops the ledger's record of tag once the name is removed (or
// was never made); a name that could not be removed keeps its record, for
// a later process to sweep.
func (s *Store) forget(tag string, removeErr error) {
	if removeErr == nil || cerrdefs.IsNotFound(removeErr) {
		s.ledger.removed(tag)
	}
}

// defaultSweepOdds is how many Stores in one sweep with no record of a
// killed process to go on (see sweepTags).
const defaultSweepOdds = 16

// ledgerDirEnv names the environment variable that sets where the records
// of short-lived names live (see nameLedger); "off": none, every process
// looks in the daemon.
const ledgerDirEnv = "IMGUTIL_NAMES_DIR"

// nameLedger records each short-lived name a process gives an image in
// one daemon while the name exists: an empty file named by its tag, made
// before the name and removed after it, in a directory per daemon that the
// processes of one machine or container share (the user cache directory). A killed process leaves its
// records behind, which tells the next process to sweep; a daemon list of
// names costs every export otherwise (5 ms with 300 images on moby's
// containerd store, growing with the images). dir is "" when there is
// none.
type nameLedger struct{ dir string }

// newNameLedger is the ledger of the names given in the daemon at host:
// a directory of its own under the ledger's.
func newNameLedger(host string) nameLedger {
	dir := os.Getenv(ledgerDirEnv)
	switch dir {
	case "off":
		return nameLedger{}
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return nameLedger{}
		}
		dir = filepath.Join(base, "imgutil", "names")
	}
	sum := sha256.Sum256([]byte(host))
	dir = filepath.Join(dir, hex.EncodeToString(sum[:6]))
	if os.MkdirAll(dir, 0o700) != nil {
		return nameLedger{}
	}
	return nameLedger{dir: dir}
}

// made records tag, before the name is given.
func (l nameLedger) made(tag string) {
	if l.dir == "" {
		return
	}
	if f, err := os.OpenFile(filepath.Join(l.dir, tag), os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	}
}

// removed forgets tag, once the name is gone.
func (l nameLedger) removed(tag string) {
	if l.dir != "" {
		_ = os.Remove(filepath.Join(l.dir, tag))
	}
}

// stale returns the recorded tags whose owner is gone (see staleTag), and
// whether the ledger could be read.
func (l nameLedger) stale() ([]string, bool) {
	if l.dir == "" {
		return nil, false
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, e := range entries {
		if staleTag(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, true
}
