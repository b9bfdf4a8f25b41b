package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/userfile"
)

// WriteFile writes entries as a tar into a new file in dir (os.TempDir when
// empty) named after pattern (as os.CreateTemp) and returns its path. The
// tar is written under a hidden temp name and renamed once complete: on
// failure no file is left. Once ctx is done the write stops with its
// error (and leaves nothing).
func WriteFile(ctx context.Context, dir, pattern string, entries []Entry) (string, error) {
	return WriteFileFrom(ctx, dir, pattern, func(w io.Writer) error { return WriteContext(ctx, w, entries) })
}

// partialPrefix starts the names of archives being written:
// .imgutil-partial-<pid>-<random>, removed by a later write in the same
// directory once the process is gone (killed mid-write).
const partialPrefix = ".imgutil-partial-"

// WriteFileFrom is WriteFile for an archive write produces (into the file
// itself, so that the kernel can copy files into it); write should stop
// when ctx is done, and a write that ends after that leaves nothing.
func WriteFileFrom(ctx context.Context, dir, pattern string, write func(w io.Writer) error) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	// Partial archives of processes that are gone (killed mid-write) are
	// removed first: a look at the directory, small beside an archive.
	userfile.SweepStale(dir, partialPrefix)
	f, err := userfile.CreateTemp(dir, userfile.OwnedPattern(partialPrefix))
	if err != nil {
		return "", fmt.Errorf("creating archive: %w", err)
	}
	partial := f.Name()
	err = write(f)
	if err == nil {
		err = ctx.Err()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(partial)
		return "", fmt.Errorf("writing archive: %w", err)
	}
	final, err := userfile.LinkTemp(partial, dir, pattern)
	if err != nil {
		os.Remove(partial)
		if final != "" {
			// Named, but the partial name could not be removed: keep one.
			os.Remove(final)
		}
		return "", fmt.Errorf("writing archive: %w", err)
	}
	return filepath.Clean(final), nil
}

// WriteImageFile writes an archive of the image b (all layers written,
// tagged with tags) as a new file in the temp directory named after
// pattern, through WriteFile: no partial file is left on failure.
//
// It is a docker archive (manifest.json), which every daemon loads. When
// the layers are written as stored (compressed blobs, as in a registry or
// a layout), it is an OCI layout as well, holding b's manifest: a
// containerd image store then loads the very manifest, so the image gets
// the same ID (the manifest digest) it has where it came from.
//
// report, when not nil, receives progress (see Reporting).
func WriteImageFile(ctx context.Context, b *built.Built, tags []string, pattern string, report func(item string, done, total int64)) (string, error) {
	entries, err := ImageEntries(b, tags)
	if err != nil {
		return "", fmt.Errorf("saving image to file: %w", err)
	}
	return WriteFile(ctx, "", pattern, Reporting(entries, report))
}

// WriteTaggedImageFile is WriteImageFile tagged with name (see Tag).
func WriteTaggedImageFile(ctx context.Context, b *built.Built, name, pattern string, report func(item string, done, total int64)) (string, error) {
	tag, err := Tag(name)
	if err != nil {
		return "", err
	}
	return WriteImageFile(ctx, b, []string{tag}, pattern, report)
}
