package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/internal/userfile"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func newFlags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.DurationVar(&commandTimeout, "timeout", 30*time.Minute, "give up after this long (a hung daemon or registry); 0: never")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: imgutil %s [OPTIONS] %s\n\n%s\n\nOptions:\n", name, args, help)
		fs.PrintDefaults()
	}
	return fs
}

// commandTimeout is the --timeout every command takes; cancelTimeout
// releases its timer.
var (
	commandTimeout time.Duration
	cancelTimeout  = func() {}
)

// parse parses args and returns the n positional targets. Flags may come
// before or after the targets (`imgutil export docker://app -o app.tar`);
// after "--" everything is a target.
func parse(fs *flag.FlagSet, args []string, n int) ([]target, error) {
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			return nil, usageError{err.Error()}
		}
		left := fs.Args()
		if used := len(rest) - len(left); used > 0 && rest[used-1] == "--" {
			positional = append(positional, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		positional, rest = append(positional, left[0]), left[1:]
	}
	if commandTimeout > 0 {
		cliCtx, cancelTimeout = context.WithTimeout(cliCtx, commandTimeout)
	}
	if len(positional) != n {
		fs.Usage()
		return nil, usageError{fmt.Sprintf("want %d image target(s), got %d", n, len(positional))}
	}
	var ts []target
	for _, a := range positional {
		t, err := parseTarget(a)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func saved(img imgutil.Image) error {
	id, err := img.Identifier()
	if err != nil {
		return err
	}
	fmt.Printf("saved %s (%s)\n", img.Name(), id)
	return nil
}

func runAppend(args []string) error {
	fs := newFlags("append", "TARGET", `Adds each --layer (a directory or a tar) on top of --base and saves the
result as TARGET (and each --tag).

Examples:
  imgutil append --layer ./rootfs oci:./base          (an image from scratch)
  imgutil append --base oci:./base --layer ./app --prefix workspace docker://my-app:latest
  imgutil append --base oci:./base --layer app.tar --tag oci:./app-v2 oci:./app`)
	var layers, tags multi
	base := fs.String("base", "", "image to start from (default: TARGET itself)")
	prefix := fs.String("prefix", "", "path inside the image where a directory layer goes (e.g. workspace)")
	fs.Var(&layers, "layer", "directory or tar to add as a layer (repeatable)")
	fs.Var(&tags, "tag", "also save under this name, in TARGET's store (repeatable)")
	ts, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if len(layers) == 0 {
		return usageError{"no --layer given"}
	}
	dst := ts[0]
	// Every extra name is checked before anything is saved.
	var extra []string
	for _, tag := range tags {
		t, err := parseTarget(tag)
		if err != nil {
			return err
		}
		if t.kind != dst.kind {
			return usageError{fmt.Sprintf("--tag %s is not in the store of %s", t, dst)}
		}
		extra = append(extra, t.name)
	}
	s := &session{}
	defer s.close()
	from := dst
	if *base != "" {
		if from, err = parseTarget(*base); err != nil {
			return err
		}
	}
	baseOpt, doneBase, err := s.baseOption(dst, from)
	if err != nil {
		return err
	}
	defer doneBase()
	img, done, err := s.open(dst, baseOpt, imgutil.WithHistory())
	if err != nil {
		return err
	}
	defer done()
	// Named for this process: a later run removes it if this one is killed.
	userfile.SweepStale(os.TempDir(), "imgutil-cli-")
	tmp, err := os.MkdirTemp("", userfile.OwnedPattern("imgutil-cli-"))
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for i, l := range layers {
		path, err := layerFile(l, *prefix, filepath.Join(tmp, fmt.Sprintf("layer-%d.tar", i)))
		if err != nil {
			return err
		}
		if err := img.AddLayerWithDiffIDAndHistory(path, "", v1.History{CreatedBy: "imgutil append " + l}); err != nil {
			return err
		}
	}
	if err := saveAs(img, dst.name, extra...); err != nil {
		return err
	}
	return saved(img)
}

// layerFile returns a layer tar for path: path itself when it is a file,
// else a tar of the directory written to out.
func layerFile(path, prefix, out string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return path, nil
	}
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	err = layer.WriteDir(f, path, prefix, imgutil.NormalizedDateTime)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return out, err
}

func runMutate(args []string) error {
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
	ts, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	s := &session{}
	defer s.close()
	img, done, err := s.open(ts[0], imgutil.FromBaseImage(ts[0].name), imgutil.WithHistory())
	if err != nil {
		return err
	}
	defer done()
	if !img.Found() {
		return fmt.Errorf("image %s: %w", ts[0], imgutil.ErrNotFound)
	}
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
	if err := saveAs(img, img.Name()); err != nil {
		return err
	}
	return saved(img)
}

func runInspect(args []string) error {
	fs := newFlags("inspect", "TARGET", `Prints TARGET's config, layers and history as JSON.

Example:
  imgutil inspect oci:./app`)
	ts, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	s := &session{}
	defer s.close()
	img, done, err := s.read(ts[0])
	if err != nil {
		return err
	}
	defer done()
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	type layerOut struct {
		DiffID    string `json:"diffID"`
		Digest    string `json:"digest,omitempty"`
		Size      int64  `json:"size,omitempty"`
		MediaType string `json:"mediaType,omitempty"`
	}
	out := struct {
		Name    string       `json:"name"`
		Config  v1.Config    `json:"config"`
		OS      string       `json:"os"`
		Arch    string       `json:"architecture"`
		Created v1.Time      `json:"created"`
		Layers  []layerOut   `json:"layers"`
		History []v1.History `json:"history"`
	}{Name: ts[0].String(), Config: cfg.Config, OS: cfg.OS, Arch: cfg.Architecture, Created: cfg.Created, History: cfg.History}
	// Sizes come from the manifest where it is cheap (registry, layout);
	// a daemon image's would need its layers read.
	var m *v1.Manifest
	if ts[0].kind != "docker" {
		m, _ = img.Manifest()
	}
	for i, d := range cfg.RootFS.DiffIDs {
		l := layerOut{DiffID: d.String()}
		if m != nil && i < len(m.Layers) {
			l.Digest, l.Size, l.MediaType = m.Layers[i].Digest.String(), m.Layers[i].Size, string(m.Layers[i].MediaType)
		}
		out.Layers = append(out.Layers, l)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runExport(args []string) error {
	fs := newFlags("export", "TARGET", `Writes TARGET as a tar that 'docker load' reads.

Example:
  imgutil export -o app.tar oci:./app`)
	out := fs.String("o", "", "file to write (required)")
	ts, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageError{"-o FILE is required"}
	}
	if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
		return usageError{fmt.Sprintf("-o %s is a directory, not a file to write", *out)}
	}
	s := &session{}
	defer s.close()
	img, done, err := s.open(ts[0], imgutil.FromBaseImage(ts[0].name), imgutil.WithHistory())
	if err != nil {
		return err
	}
	defer done()
	if !img.Found() {
		return fmt.Errorf("image %s: %w", ts[0], imgutil.ErrNotFound)
	}
	tmp, err := saveFile(img)
	if err != nil {
		return err
	}
	if err := moveFile(tmp, *out); err != nil {
		os.Remove(tmp)
		return err
	}
	fmt.Printf("exported %s to %s\n", ts[0], *out)
	return nil
}

// saveAs saves img under name and more, under the command's context where
// the backend takes one (a signal then stops the save and leaves nothing).
func saveAs(img imgutil.Image, name string, more ...string) error {
	if c, ok := img.(interface {
		SaveAsContext(context.Context, string, ...string) error
	}); ok {
		return c.SaveAsContext(cliCtx, name, more...)
	}
	return img.SaveAs(name, more...)
}

// saveFile is img.SaveFile under the command's context where the backend
// takes one.
func saveFile(img imgutil.Image) (string, error) {
	if c, ok := img.(interface {
		SaveFileContext(context.Context) (string, error)
	}); ok {
		return c.SaveFileContext(cliCtx)
	}
	return img.SaveFile()
}

// moveFile renames src to dst, copying across file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	partial := dst + ".partial"
	o, err := os.Create(partial)
	if err != nil {
		return err
	}
	_, err = io.Copy(o, in)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, dst)
	}
	if err != nil {
		os.Remove(partial)
		return err
	}
	return os.Remove(src)
}

func runRebase(args []string) error {
	fs := newFlags("rebase", "TARGET", `Replaces the layers of TARGET that belong to --old-base with the layers of
--new-base (both in TARGET's store), keeping the layers above, and saves
TARGET in place.

Example:
  imgutil rebase --old-base docker://run:1 --new-base docker://run:2 docker://my-app:latest`)
	oldBase := fs.String("old-base", "", "the base TARGET was built on (required)")
	newBase := fs.String("new-base", "", "the base to move TARGET onto (required)")
	ts, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
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
	s := &session{}
	defer s.close()
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
	nb, doneNew, err := s.open(newT, imgutil.FromBaseImage(newT.name))
	if err != nil {
		return err
	}
	defer doneNew()
	img, done, err := s.open(ts[0], imgutil.FromBaseImage(ts[0].name), imgutil.WithHistory())
	if err != nil {
		return err
	}
	defer done()
	if err := img.Rebase(oldCfg.RootFS.DiffIDs[len(oldCfg.RootFS.DiffIDs)-1].String(), nb); err != nil {
		return err
	}
	if err := saveAs(img, img.Name()); err != nil {
		return err
	}
	return saved(img)
}

func runCopy(args []string) error {
	fs := newFlags("copy", "SOURCE DESTINATION", `Copies an image between stores; each layer is read from its store once.

Examples:
  imgutil copy docker://my-app:latest registry.example.com/team/my-app:latest
  imgutil copy registry.example.com/base:22 oci:./base`)
	ts, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	s := &session{}
	defer s.close()
	baseOpt, doneBase, err := s.baseOption(ts[1], ts[0])
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
	if err := saveAs(img, img.Name()); err != nil {
		return err
	}
	return saved(img)
}
