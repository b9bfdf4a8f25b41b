package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/userfile"
)

// Repositories of the short-lived names a save or a read gives images:
// staged loads (see staged) and probes (see probeImage, learnManifests).
const (
	stagingRepo = "imgutil-staging"
	probeRepo   = "imgutil-probe"
)

// staleAfter is the age from which a short-lived name whose owner cannot
// be checked (another host, another container) is taken for one left by a
// killed process: the name exists only between the end of a load and the
// save's next call or two, and its tag says when the operation began.
const staleAfter = time.Hour

// ownedTag is a tag for a short-lived name of this process: which host
// (a hash of hostname and boot), which process, when, and a random part:
// <host>-<pid>-<unix seconds>-<random>.
func ownedTag() string {
	return fmt.Sprintf("%s-%d-%d-%s", hostID(), os.Getpid(), time.Now().Unix(), strings.ToLower(rand.Text()[:8]))
}

// hostID tells this host (or container) apart: 8 hex digits of the hash
// of its hostname and boot id.
func hostID() string {
	name, _ := os.Hostname()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	sum := sha256.Sum256([]byte(name + "\n" + strings.TrimSpace(string(boot))))
	return hex.EncodeToString(sum[:4])
}

// staleTag reports whether an owned tag was left by a process that is
// gone: one of this host that no longer runs, or any older than staleAfter.
// A tag that says nothing of its owner is not ours to judge.
func staleTag(tag string, now time.Time) bool {
	parts := strings.Split(tag, "-")
	if len(parts) != 4 {
		return false
	}
	pid, err1 := strconv.Atoi(parts[1])
	secs, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return false
	}
	if now.Sub(time.Unix(secs, 0)) > staleAfter {
		return true
	}
	if parts[0] != hostID() || pid == os.Getpid() {
		return false
	}
	return userfile.ProcessGone(pid)
}

// imageLister is the part of the caller's client a sweep needs; the
// DockerClient interface (whose method set is fixed) lacks it, the Docker
// client has it.
type imageLister interface {
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
}

// sweepTags removes the staging and probe names that killed processes
// left in the daemon (a staged image is a complete copy of what was being
// saved), once per Store, after its first save. A client that cannot list
// images is not asked. Failures change nothing: the sweep only tidies.
func (s *Store) sweepTags(ctx context.Context) {
	if !s.swept.CompareAndSwap(false, true) {
		return
	}
	res, err := s.client.imageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("reference", stagingRepo+"/*", probeRepo+"/*"),
	})
	if err != nil {
		return
	}
	now := time.Now()
	for _, im := range res.Items {
		for _, t := range im.RepoTags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				continue
			}
			tagged, ok := named.(reference.Tagged)
			path := reference.Path(named)
			ours := strings.HasPrefix(path, stagingRepo+"/") || strings.HasPrefix(path, probeRepo+"/")
			if !ok || !ours || reference.Domain(named) != "docker.io" || !staleTag(tagged.Tag(), now) {
				continue
			}
			_, _ = s.client.ImageRemove(ctx, t, client.ImageRemoveOptions{})
		}
	}
}
