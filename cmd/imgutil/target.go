package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	ctrdclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/internal/dockerhost"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
)

// target is where an image lives, as the user wrote it.
type target struct {
	kind string // "docker", "oci", "containerd" or "registry"
	ns   string // the containerd namespace
	name string
}

// sameStore reports whether t and u live in one store (one containerd
// namespace).
func (t target) sameStore(u target) bool { return t.kind == u.kind && t.ns == u.ns }

// splitNamespace splits containerd://[NAMESPACE//]NAME: the namespace is
// what comes before "//" (no image reference holds one, so that no
// registry host or Docker Hub organisation is taken for a namespace), else
// CONTAINERD_NAMESPACE, else "default", as ctr and nerdctl take it.
func splitNamespace(s string) (ns, rest string, err error) {
	if ns, rest, ok := strings.Cut(s, "//"); ok {
		if err := identifiers.Validate(ns); err != nil {
			return "", "", usageError{fmt.Sprintf("containerd namespace %q (in containerd://%s): %v", ns, s, err)}
		}
		return ns, rest, nil
	}
	if ns = os.Getenv("CONTAINERD_NAMESPACE"); ns == "" {
		ns = containerd.DefaultNamespace
	}
	return ns, s, nil
}

func parseTarget(s string) (target, error) {
	var t target
	switch {
	case s == "":
		return target{}, usageError{"empty image target"}
	case strings.HasPrefix(s, "docker://"):
		t = target{kind: "docker", name: strings.TrimPrefix(s, "docker://")}
	case strings.HasPrefix(s, "oci:"):
		t = target{kind: "oci", name: strings.TrimPrefix(s, "oci:")}
	case strings.HasPrefix(s, "containerd://"):
		ns, n, err := splitNamespace(strings.TrimPrefix(s, "containerd://"))
		if err != nil {
			return target{}, err
		}
		t = target{kind: "containerd", ns: ns, name: n}
	default:
		t = target{kind: "registry", name: s}
	}
	if t.name == "" {
		return target{}, usageError{fmt.Sprintf("image target %q names nothing", s)}
	}
	// A name that is no image reference is a usage mistake (exit 2),
	// found before anything is opened or saved.
	if t.kind != "oci" {
		if _, err := name.ParseReference(t.name, name.WeakValidation); err != nil {
			if lower := lowerRepository(t.name); lower != t.name {
				if _, lerr := name.ParseReference(lower, name.WeakValidation); lerr == nil {
					return target{}, usageError{fmt.Sprintf("image target %q: image names are lowercase: %s (a tag may have capitals)",
						s, strings.TrimSuffix(s, t.name)+lower)}
				}
			}
			return target{}, usageError{fmt.Sprintf("image target %q: %v", s, err)}
		}
	}
	return t, nil
}

// lowerRepository is ref with its repository (all but the tag or digest)
// in lower case.
func lowerRepository(ref string) string {
	repo, rest := ref, ""
	if i := strings.IndexAny(ref, "@"); i >= 0 {
		repo, rest = ref[:i], ref[i:]
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, rest = ref[:i], ref[i:]
	}
	return strings.ToLower(repo) + rest
}

func (t target) String() string {
	switch t.kind {
	case "docker":
		return "docker://" + t.name
	case "oci":
		return "oci:" + t.name
	case "containerd":
		return "containerd://" + t.ns + "//" + t.name
	}
	return t.name
}

// session is one command's run: its context (a signal or --timeout ends
// it), a daemon client, made once, and where progress is drawn.
type session struct {
	ctx      context.Context
	cancel   context.CancelFunc
	cli      *client.Client
	ctrd     *ctrdclient.Client
	progress *progressPrinter
	// quiet says no progress is drawn (--quiet).
	quiet bool
	// platform is the one platform to open of a multi-platform image
	// (--platform), nil for the default.
	platform *imgutil.Platform
}

func (s *session) close() {
	s.cancel()
	if s.progress != nil {
		s.progress.finish()
	}
	if s.cli != nil {
		_ = s.cli.Close()
	}
	if s.ctrd != nil {
		_ = s.ctrd.Close()
	}
}

// containerd returns the session's containerd client, dialled once to
// CONTAINERD_ADDRESS (default /run/containerd/containerd.sock), as ctr does.
func (s *session) containerd() (*ctrdclient.Client, error) {
	if s.ctrd == nil {
		addr := os.Getenv("CONTAINERD_ADDRESS")
		if addr == "" {
			addr = "/run/containerd/containerd.sock"
		}
		// A socket that is not there fails at once (the client would
		// wait for it), naming the variable that says where it is.
		if path, ok := strings.CutPrefix(addr, "unix://"); runtime.GOOS != "windows" && (ok || !strings.Contains(addr, "://")) {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("no containerd at %s (set CONTAINERD_ADDRESS to its socket): %w", addr, err)
			}
		}
		c, err := ctrdclient.New(addr)
		if err != nil {
			return nil, fmt.Errorf("connecting to containerd at %s (CONTAINERD_ADDRESS): %w", addr, err)
		}
		s.ctrd = c
	}
	return s.ctrd, nil
}

func (s *session) docker() (*client.Client, error) {
	if s.cli == nil {
		// As the Docker CLI: DOCKER_HOST (with DOCKER_TLS_VERIFY and
		// DOCKER_CERT_PATH), else DOCKER_CONTEXT or the current context.
		ep, err := dockerhost.FromEnv()
		if err != nil {
			return nil, fmt.Errorf("finding the Docker daemon: %w", err)
		}
		cli, err := ep.Client()
		if err != nil {
			return nil, fmt.Errorf("connecting to the daemon at %s: %w", ep, err)
		}
		s.cli = cli
	}
	return s.cli, nil
}

// open returns an image to save at t, built with ops; base and previous
// names in ops are read from t's store. A base from another store is given
// as an instance (see openBase).
func (s *session) open(t target, ops ...imgutil.ImageOption) (imgutil.ContextImage, func(), error) {
	if s.progress == nil {
		s.progress = newProgressPrinter(os.Stderr)
		if s.quiet {
			s.progress = &progressPrinter{w: io.Discard}
		}
	}
	ops = append(ops, imgutil.WithProgress(s.progress.update))
	if s.platform != nil {
		ops = append(ops, imgutil.WithDefaultPlatform(*s.platform))
	}
	switch t.kind {
	case "docker":
		cli, err := s.docker()
		if err != nil {
			return nil, nil, err
		}
		img, err := local.NewImageContext(s.ctx, t.name, cli, ops...)
		if err != nil {
			return nil, nil, err
		}
		return img, func() { _ = img.Close() }, nil
	case "oci":
		img, err := layout.NewImage(t.name, ops...)
		return img, func() {}, err
	case "containerd":
		c, err := s.containerd()
		if err != nil {
			return nil, nil, err
		}
		img, err := containerd.NewImageContext(s.ctx, t.name, c, append(ops, containerd.WithNamespace(t.ns))...)
		return img, func() {}, err
	default:
		img, err := remote.NewImageContext(s.ctx, t.name, authn.DefaultKeychain, ops...)
		return img, func() {}, err
	}
}

// edit opens the existing image at t, with its history, to edit or export
// it; a missing one is imgutil.ErrNotFound.
func (s *session) edit(t target) (imgutil.ContextImage, func(), error) {
	return s.existing(t, imgutil.FromBaseImage(t.name), imgutil.WithHistory())
}

// read opens the existing image at t as a v1.Image.
func (s *session) read(t target) (v1.Image, func(), error) {
	img, done, err := s.existing(t, imgutil.FromBaseImage(t.name))
	if err != nil {
		return nil, nil, err
	}
	return img.UnderlyingImage(), done, nil
}

// existing opens the image at t with ops, which must exist: a missing one
// is imgutil.ErrNotFound.
func (s *session) existing(t target, ops ...imgutil.ImageOption) (imgutil.ContextImage, func(), error) {
	img, done, err := s.open(t, ops...)
	if err != nil {
		return nil, nil, err
	}
	if found, err := img.FoundE(s.ctx); !found || err != nil {
		done()
		if err == nil {
			err = imgutil.ErrNotFound
		}
		return nil, nil, fmt.Errorf("image %s: %w", t, err)
	}
	return img, done, nil
}

// baseOption returns the option that starts an image at dst from src:
// by name when both live in one store, as an instance otherwise. When
// mustExist (a --base or copy source the user named), a src that does not
// exist is an error naming it (imgutil.ErrNotFound), never an image from
// scratch.
func (s *session) baseOption(dst, src target, mustExist bool) (imgutil.ImageOption, func(), error) {
	if dst.sameStore(src) {
		if mustExist {
			_, done, err := s.existing(src)
			if err != nil {
				return nil, nil, err
			}
			done()
		}
		return imgutil.FromBaseImage(src.name), func() {}, nil
	}
	img, done, err := s.read(src)
	if err != nil {
		return nil, nil, err
	}
	return func(o *imgutil.ImageOptions) { o.BaseImage = img }, done, nil
}
