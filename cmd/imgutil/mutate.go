package main

import (
	"context"
	"strings"
)

func runMutate(ctx context.Context, args []string) error {
	fs := newFlags("mutate", "TARGET", `Edits TARGET's config and saves it in place.

Examples:
  imgutil mutate --label version=1.2 --env MODE=prod docker://my-app:latest
  imgutil mutate --entrypoint /app/run --cmd --serve --workdir /app oci:./app`)
	var labels, envs, entrypoint, cmd multi
	fs.Var(&labels, "label", "KEY=VALUE label to set (repeatable)")
	fs.Var(&envs, "env", "KEY=VALUE environment variable to set (repeatable)")
	fs.Var(&entrypoint, "entrypoint", "entrypoint argument (repeat for each)")
	fs.Var(&cmd, "cmd", "command argument (repeat for each)")
	workdir := fs.String("workdir", "", "working directory")
	s, ts, err := parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer s.close()
	img, done, err := s.edit(ts[0])
	if err != nil {
		return err
	}
	defer done()
	for _, kv := range labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usageError{"--label wants KEY=VALUE, got " + kv}
		}
		if err := img.SetLabel(k, v); err != nil {
			return err
		}
	}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usageError{"--env wants KEY=VALUE, got " + kv}
		}
		if err := img.SetEnv(k, v); err != nil {
			return err
		}
	}
	if len(entrypoint) > 0 {
		if err := img.SetEntrypoint(entrypoint...); err != nil {
			return err
		}
	}
	if len(cmd) > 0 {
		if err := img.SetCmd(cmd...); err != nil {
			return err
		}
	}
	if *workdir != "" {
		if err := img.SetWorkingDir(*workdir); err != nil {
			return err
		}
	}
	if err := img.SaveAsContext(s.ctx, img.Name()); err != nil {
		return err
	}
	return saved(img)
}
