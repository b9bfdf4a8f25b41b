package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
)

func runCopy(ctx context.Context, args []string) error {
	fs := newFlags("copy", "SOURCE DESTINATION", `Copies an image between stores; each layer is read from its store once.

Examples:
  imgutil copy docker://my-app:latest registry.example.com/team/my-app:latest
  imgutil copy registry.example.com/base:22 oci:./base`)
	platform := fs.String("platform", "", "copy only this platform (OS/ARCH[/VARIANT]) of a multi-platform SOURCE; default: every platform, where DESTINATION holds them")
	s, ts, err := parse(ctx, fs, args, 2)
	if err != nil {
		return err
	}
	defer s.close()
	if *platform != "" {
		p, err := parsePlatform(*platform)
		if err != nil {
			return err
		}
		s.platform = &p
	} else if idx := sourceIndex(s.ctx, ts[0]); idx != nil {
		return s.copyIndex(idx, ts[0], ts[1])
	} else if idx, err := s.containerdIndex(ts[0]); err != nil {
		return err
	} else if idx != nil {
		return s.copyIndex(idx, ts[0], ts[1])
	} else {
		idx, done, err := s.daemonIndex(ts[0])
		if err != nil {
			return err
		}
		defer done()
		if idx != nil {
			return s.copyIndex(idx, ts[0], ts[1])
		}
	}
	baseOpt, doneBase, err := s.baseOption(ts[1], ts[0], true)
	if err != nil {
		return err
	}
	defer doneBase()
	// Nothing is edited: the copy is the image itself, digest and all; out
	// of a daemon, its config byte for byte (its ID on classic stores and
	// Podman; into the same daemon, the very image under a new name).
	opts := []imgutil.ImageOption{baseOpt, imgutil.WithHistory(), func(o *imgutil.ImageOptions) { o.PreserveDigest = true }}
	img, done, err := s.open(ts[1], opts...)
	if err != nil {
		return err
	}
	defer done()
	if err := img.SaveAsContext(s.ctx, img.Name()); err != nil {
		return err
	}
	return saved(img)
}

// copyIndex copies the multi-platform image idx (every platform) from src
// to dst: into a daemon as one image (local.Store.SaveIndex: the
// containerd image store only; other stores are an error that says to
// pick a platform), into a containerd namespace as one image
// (containerd.SaveIndex: this machine's platform unpacked), into a
// registry as the index itself, into a layout as its one image
// (layout.SaveIndex).
func (s *session) copyIndex(idx v1.ImageIndex, src, dst target) error {
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	switch dst.kind {
	case "docker":
		cli, err := s.docker()
		if err != nil {
			return err
		}
		store := local.NewStore(cli)
		defer func() { _ = store.Close() }()
		id, err := store.SaveIndex(s.ctx, idx, dst.name)
		if errors.Is(err, local.ErrIndexNotSupported) {
			return fmt.Errorf("copying %s: %w (copy one platform with --platform)", src, err)
		}
		if err != nil {
			return err
		}
		fmt.Printf("saved %s (%s)\n", dst.name, id)
		return nil
	case "registry":
		ref, err := name.ParseReference(dst.name, name.WeakValidation)
		if err != nil {
			return usageError{fmt.Sprintf("image name %q: %v", dst.name, err)}
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(s.ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return err
		}
	case "oci":
		// As an image save writes a layout: blobs checked, through temp
		// files; index.json replaced last; nothing left on failure.
		if _, err := layout.SaveIndex(s.ctx, dst.name, idx, ""); err != nil {
			return err
		}
	case "containerd":
		c, err := s.containerd()
		if err != nil {
			return err
		}
		if _, err := containerd.SaveIndex(s.ctx, c, dst.name, idx, containerd.WithNamespace(dst.ns)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("copying %s into %s: a multi-platform image is not saved there: %w (copy one platform with --platform)", src, dst, errors.ErrUnsupported)
	}
	fmt.Printf("saved %s (%s)\n", dst.name, d)
	return nil
}

// parsePlatform reads OS/ARCH[/VARIANT].
func parsePlatform(v string) (imgutil.Platform, error) {
	parts := strings.Split(v, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return imgutil.Platform{}, usageError{fmt.Sprintf("--platform %q: want OS/ARCH[/VARIANT]", v)}
	}
	p := imgutil.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// containerdIndex is t, a containerd image, as a multi-platform image (an
// index of two images or more), nil when it is not one. Of an index the
// namespace holds in part (pulled for some platforms; attestations are
// seldom pulled), the part held is copied, and stderr says what is left
// out (see heldPart).
func (s *session) containerdIndex(t target) (v1.ImageIndex, error) {
	if t.kind != "containerd" {
		return nil, nil
	}
	c, err := s.containerd()
	if err != nil {
		return nil, err
	}
	idx, err := containerd.OpenIndex(s.ctx, c, t.name, containerd.WithNamespace(t.ns))
	var incomplete *containerd.IncompleteIndexError
	switch {
	case errors.As(err, &incomplete):
		return s.heldPart(incomplete.Name, incomplete.Index, incomplete.Missing, incomplete)
	case errors.Is(err, containerd.ErrNotIndex) || errors.Is(err, imgutil.ErrNotFound):
		return nil, nil // one image, or none: the copy says which
	case err != nil:
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil || len(platformsIn(m)) < 2 {
		return nil, err // one image and its attestation: one platform
	}
	return idx, nil
}

// heldPart is what can be copied of the index idx of name, held in part
// (missing lists the images it lacks; why says so, for the error):
// two platforms or more, as a new index of those (without the manifests it
// lacks, nor the attestations of those); one, as that platform's image
// (nil, with s.platform set to it); none, an error. Stderr says what is
// left out.
func (s *session) heldPart(name string, idx v1.ImageIndex, lacks []v1.Descriptor, why error) (v1.ImageIndex, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	missing := map[v1.Hash]bool{}
	var lost []string
	for _, d := range lacks {
		missing[d.Digest] = true
		if d.Platform != nil && d.Platform.OS != "unknown" {
			lost = append(lost, d.Platform.String())
		}
	}
	var held []v1.Descriptor
	drop := slices.Collect(maps.Keys(missing))
	for _, d := range m.Manifests {
		attestation := d.Platform != nil && d.Platform.OS == "unknown"
		switch {
		case missing[d.Digest]:
		case attestation:
			// An attestation of an image left out goes with it.
			if subject, err := v1.NewHash(d.Annotations["vnd.docker.reference.digest"]); err == nil && missing[subject] {
				drop = append(drop, d.Digest)
			}
		case d.MediaType.IsImage():
			held = append(held, d)
		}
	}
	leftOut := "its attestations"
	if len(lost) > 0 {
		leftOut = strings.Join(lost, ", ")
	}
	switch len(held) {
	case 0:
		return nil, fmt.Errorf("copying %s: %w", name, why)
	case 1:
		p := held[0].Platform
		if p != nil {
			s.platform = &imgutil.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
		}
		if len(lost) > 0 {
			fmt.Fprintf(os.Stderr, "note: %s: one platform of its index is held; copying that platform's image (%s), not %s\n", name, platformName(held[0]), leftOut)
		}
		return nil, nil
	}
	part := mutate.RemoveManifests(idx, match.Digests(drop...))
	d, err := part.Digest()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "note: %s: the content of %s is not held; copying the %d platforms held as a new index (%s)\n", name, leftOut, len(held), d)
	return part, nil
}

// platformName is d's platform as OS/ARCH[/VARIANT], "" when it has none.
func platformName(d v1.Descriptor) string {
	if d.Platform == nil {
		return "no platform"
	}
	return d.Platform.String()
}
