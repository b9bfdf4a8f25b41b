package main

import (
	"context"
	"fmt"

	"github.com/imgbridge/imgutil"
)

func runRebase(ctx context.Context, args []string) error {
	fs := newFlags("rebase", "TARGET", `Replaces the layers of TARGET that belong to --old-base with the layers of
--new-base (both in TARGET's store), keeping the layers above, and saves
TARGET in place.

Example:
  imgutil rebase --old-base docker://run:1 --new-base docker://run:2 docker://my-app:latest`)
	oldBase := fs.String("old-base", "", "the base TARGET was built on (required)")
	newBase := fs.String("new-base", "", "the base to move TARGET onto (required)")
	s, ts, err := parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer s.close()
	if *oldBase == "" || *newBase == "" {
		return usageError{"--old-base and --new-base are required"}
	}
	oldT, err := parseTarget(*oldBase)
	if err != nil {
		return err
	}
	newT, err := parseTarget(*newBase)
	if err != nil {
		return err
	}
	old, doneOld, err := s.read(oldT)
	if err != nil {
		return err
	}
	defer doneOld()
	oldCfg, err := old.ConfigFile()
	if err != nil {
		return err
	}
	if len(oldCfg.RootFS.DiffIDs) == 0 {
		return fmt.Errorf("old base %s has no layers", oldT)
	}
	// With its history: the rebased image keeps it for the new base's layers.
	nb, doneNew, err := s.existing(newT, imgutil.FromBaseImage(newT.name), imgutil.WithHistory())
	if err != nil {
		return err
	}
	defer doneNew()
	img, done, err := s.edit(ts[0])
	if err != nil {
		return err
	}
	defer done()
	if err := img.Rebase(oldCfg.RootFS.DiffIDs[len(oldCfg.RootFS.DiffIDs)-1].String(), nb); err != nil {
		return err
	}
	if err := img.SaveAsContext(s.ctx, img.Name()); err != nil {
		return err
	}
	return saved(img)
}
