package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/internal/userfile"
)

func runAppend(ctx context.Context, args []string) error {
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
	s, ts, err := parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer s.close()
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
		if !t.sameStore(dst) {
			return usageError{fmt.Sprintf("--tag %s is not in the store of %s", t, dst)}
		}
		extra = append(extra, t.name)
	}
	from := dst
	if *base != "" {
		if from, err = parseTarget(*base); err != nil {
			return err
		}
	}
	baseOpt, doneBase, err := s.baseOption(dst, from, *base != "")
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
	if err := img.SaveAsContext(s.ctx, dst.name, extra...); err != nil {
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
