package local

import (
	"context"
	"strings"
	"time"

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
			_, _ = s.client.ImageRemove(ctx, t, client.ImageRemoveOptions{})
		}
	}
}
