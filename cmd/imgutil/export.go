package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/imgbridge/imgutil/internal/userfile"
)

func runExport(ctx context.Context, args []string) error {
	fs := newFlags("export", "TARGET", `Writes TARGET as a tar that 'docker load' reads.

Example:
  imgutil export -o app.tar oci:./app`)
	out := fs.String("o", "", "file to write (required)")
	s, ts, err := parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer s.close()
	if *out == "" {
		return usageError{"-o FILE is required"}
	}
	if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
		return usageError{fmt.Sprintf("-o %s is a directory, not a file to write", *out)}
	}
	img, done, err := s.edit(ts[0])
	if err != nil {
		return err
	}
	defer done()
	tmp, err := img.SaveFileContext(s.ctx)
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

// moveFile renames src to dst, copying across file systems.
func moveFile(src, dst string) error {
	if err := userfile.Replace(src, dst); err == nil {
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
		err = userfile.Replace(partial, dst)
	}
	if err != nil {
		os.Remove(partial)
		return err
	}
	return os.Remove(src)
}
