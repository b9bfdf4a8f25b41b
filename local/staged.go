package local

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
)

// staged loads an image (key: its config or index digest) under a staging tag of its own (load does it and
// returns the ID, proven), then moves the user's name to it, and removes
// the staging tag whatever happens (with a fresh short context: the
// caller's may be cancelled). The name moves only to a complete image.
// Should another save of the same name move it away before the answer,
// the image saved is reported if it still exists (classic stores keep it,
// unnamed); where it went with its names (the containerd store), the
// error matches imgutil.ErrTagTakenOver.
func (s *Store) staged(ctx context.Context, key v1.Hash, name string, load func(staging string) (string, error)) (string, error) {
	// Normalized as the daemons name images (an OCI archive's containerd
	// annotation must be).
	tag := ownedTag()
	staging := "docker.io/" + stagingRepo + "/" + key.Hex[:16] + ":" + tag
	s.ledger.made(tag)
	removed := false
	unstage := func() (client.ImageRemoveResult, error) {
		if removed {
			return client.ImageRemoveResult{}, nil
		}
		removed = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		res, err := s.client.ImageRemove(rctx, staging, client.ImageRemoveOptions{})
		s.forget(tag, err)
		return res, err
	}
	defer func() { _, _ = unstage() }()
	id, err := load(staging)
	if err != nil {
		return "", err
	}
	if err := s.retag(ctx, staging, name); err != nil {
		return "", err
	}
	res, err := unstage()
	if err == nil {
		// Untagging the staging name deletes the image only if no other
		// name holds it any more: another save moved the user's name away
		// meanwhile, and the image went with it. Otherwise it exists.
		for _, it := range res.Items {
			if it.Deleted != "" && strings.TrimPrefix(it.Deleted, "sha256:") == strings.TrimPrefix(id, "sha256:") {
				return "", fmt.Errorf("image %s was saved as %s, but another save moved the name away and it is gone: %w", id, name, imgutil.ErrTagTakenOver)
			}
		}
		return id, nil
	}
	return s.stillSaved(ctx, id, name)
}

// retag names the image source name. The containerd store may refuse when
// another save moves name at the same moment ("failed to create an image
// ... after deleting the existing one"): it is tried again, a few times.
func (s *Store) retag(ctx context.Context, source, name string) error {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return fmt.Errorf("image name %q: %w: %w", name, imgutil.ErrInvalidArgument, err)
	}
	target := reference.TagNameOnly(named).String()
	for attempt := 0; ; attempt++ {
		_, err := s.client.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target})
		if err == nil {
			return nil
		}
		if attempt == 4 || ctx.Err() != nil || !strings.Contains(err.Error(), "already exists") {
			// The staged image gone before it was named: dropped.
			return dropped(daemonError("tagging "+name, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(10*(attempt+1)) * time.Millisecond):
		}
	}
}

// stillSaved answers a save that named id name: id, unless another save
// moved name away and the image is gone with it.
func (s *Store) stillSaved(ctx context.Context, id, name string) (string, error) {
	res, err := s.inspect(ctx, name)
	if err == nil && res.ID == id {
		return id, nil
	}
	if _, ierr := s.client.ImageInspect(ctx, id); ierr == nil {
		return id, nil // saved; the name has moved on since
	}
	now := "nothing"
	if err == nil {
		now = res.ID
	}
	return "", fmt.Errorf("image %s was saved as %s, but another save moved the name to %s: %w", id, name, now, imgutil.ErrTagTakenOver)
}

// landed reports whether tag names the image b, by its config digest (the
// image ID on classic stores and Podman), asking with a fresh short context:
// the caller's was cancelled after the archive may have been taken.
func (s *Store) landed(b *built.Built, tag string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.inspect(ctx, tag)
	if err != nil || res.ID != b.ConfigDigest().String() || !slices.Equal(res.RootFS.Layers, diffIDStrings(b)) {
		return "", false
	}
	return res.ID, true
}
