package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/imgbridge/imgutil"
)

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
	img, done, err := s.edit(ts[0])
	if err != nil {
		return err
	}
	defer done()
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
