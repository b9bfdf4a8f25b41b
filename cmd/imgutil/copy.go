package main

import (
	"context"

	"github.com/imgbridge/imgutil"
)

func runCopy(ctx context.Context, args []string) error {
	fs := newFlags("copy", "SOURCE DESTINATION", `Copies an image between stores; each layer is read from its store once.

Examples:
  imgutil copy docker://my-app:latest registry.example.com/team/my-app:latest
  imgutil copy registry.example.com/base:22 oci:./base`)
	s, ts, err := parse(ctx, fs, args, 2)
	if err != nil {
		return err
	}
	defer s.close()
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
