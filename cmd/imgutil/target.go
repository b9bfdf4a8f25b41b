package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
)

// target is where an image lives, as the user wrote it.
type target struct {
	kind string // "docker", "oci" or "registry"
	name string
}

func parseTarget(s string) (target, error) {
	var t target
	switch {
	case s == "":
		return target{}, usageError{"empty image target"}
	case strings.HasPrefix(s, "docker://"):
		t = target{"docker", strings.TrimPrefix(s, "docker://")}
	case strings.HasPrefix(s, "oci:"):
		t = target{"oci", strings.TrimPrefix(s, "oci:")}
	default:
		t = target{"registry", s}
	}
	if t.name == "" {
		return target{}, usageError{fmt.Sprintf("image target %q names nothing", s)}
	}
	// A name that is no image reference is a usage mistake (exit 2),
	// found before anything is opened or saved.
	if t.kind != "oci" {
		if _, err := name.ParseReference(t.name, name.WeakValidation); err != nil {
			return target{}, usageError{fmt.Sprintf("image target %q: %v", s, err)}
		}
	}
	return t, nil
}

func (t target) String() string {
	switch t.kind {
	case "docker":
		return "docker://" + t.name
	case "oci":
		return "oci:" + t.name
	}
	return t.name
}

// session is one command's run: its context (a signal or --timeout ends
// it), a daemon client, made once, and where progress is drawn.
type session struct {
	ctx      context.Context
	cancel   context.CancelFunc
	cli      *client.Client
	progress *progressPrinter
}

func (s *session) close() {
	s.cancel()
	if s.progress != nil {
		s.progress.finish()
	}
	if s.cli != nil {
		_ = s.cli.Close()
	}
}

func (s *session) docker() (*client.Client, error) {
	if s.cli == nil {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("connecting to the daemon: %w", err)
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
	}
	ops = append(ops, imgutil.WithProgress(s.progress.update))
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
	default:
		img, err := remote.NewImageContext(s.ctx, t.name, authn.DefaultKeychain, ops...)
		return img, func() {}, err
	}
}

// edit opens the existing image at t, with its history, to edit or export
// it; a missing one is imgutil.ErrNotFound.
func (s *session) edit(t target) (imgutil.ContextImage, func(), error) {
	img, done, err := s.open(t, imgutil.FromBaseImage(t.name), imgutil.WithHistory())
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

// read opens the existing image at t as a v1.Image.
func (s *session) read(t target) (v1.Image, func(), error) {
	img, done, err := s.open(t, imgutil.FromBaseImage(t.name))
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
	return img.UnderlyingImage(), done, nil
}

// baseOption returns the option that starts an image at dst from src:
// by name when both live in one store, as an instance otherwise.
func (s *session) baseOption(dst, src target) (imgutil.ImageOption, func(), error) {
	if dst.kind == src.kind {
		return imgutil.FromBaseImage(src.name), func() {}, nil
	}
	img, done, err := s.read(src)
	if err != nil {
		return nil, nil, err
	}
	return func(o *imgutil.ImageOptions) { o.BaseImage = img }, done, nil
}
