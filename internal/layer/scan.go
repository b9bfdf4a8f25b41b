package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// Info is what one read of a layer file tells.
type Info struct {
	// DiffID is the sha256 of the uncompressed tar.
	DiffID v1.Hash
	// Size is the length of the uncompressed tar.
	Size int64
	// Gzip is true when the file is gzip-compressed.
	Gzip bool
	// Digest and FileSize describe the file as stored; for an uncompressed
	// file they equal DiffID and Size.
	Digest   v1.Hash
	FileSize int64
}

var gzipMagic = []byte{0x1f, 0x8b}

// ScanFile reads the layer file at path once and returns its Info. The tar
// entries are checked with CheckHeader. A missing file matches
// fs.ErrNotExist; bad content matches imgerr.ErrInvalidArgument.
func ScanFile(path string) (Info, error) {
	if err := checkRegular(path); err != nil {
		return Info{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("opening layer file: %w", err)
	}
	defer f.Close()
	info, err := Scan(f)
	if err != nil {
		return Info{}, fmt.Errorf("reading layer file %s: %w", path, err)
	}
	return info, nil
}

// Scan reads a layer (a plain or gzip-compressed tar) to its end once and
// returns its Info, after checking every entry with CheckHeader.
func Scan(r io.Reader) (Info, error) {
	stored := newCountingHash()
	br := bufio.NewReaderSize(io.TeeReader(r, stored), 1<<16)
	magic, _ := br.Peek(2)
	info := Info{Gzip: bytes.Equal(magic, gzipMagic)}

	var tarStream io.Reader = br
	uncompressed := stored
	if info.Gzip {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Info{}, fmt.Errorf("reading gzip header: %w: %w", imgerr.ErrInvalidArgument, err)
		}
		defer func() { _ = zr.Close() }()
		uncompressed = newCountingHash()
		tarStream = io.TeeReader(zr, uncompressed)
	}
	if err := checkEntries(tarStream); err != nil {
		return Info{}, err
	}
	// The tar reader stops at the end-of-archive marker: hash the padding too.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return Info{}, fmt.Errorf("reading layer: %w: %w", imgerr.ErrInvalidArgument, err)
	}
	if info.Gzip {
		if _, err := io.Copy(io.Discard, br); err != nil {
			return Info{}, fmt.Errorf("reading layer: %w", err)
		}
	}
	info.Digest, info.FileSize = stored.sum()
	info.DiffID, info.Size = uncompressed.sum()
	return info, nil
}

func checkEntries(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w: %w", imgerr.ErrInvalidArgument, err)
		}
		if err := CheckHeader(hdr); err != nil {
			return err
		}
	}
}

// countingHash is a sha256 that also counts the bytes written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

func newCountingHash() *countingHash { return &countingHash{h: sha256.New()} }

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *countingHash) sum() (v1.Hash, int64) {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(c.h.Sum(nil))}, c.n
}

// checkRegular refuses a layer path that is not a regular file (a device
// would read for ever, a FIFO block): ErrInvalidArgument. A missing file
// matches fs.ErrNotExist.
func checkRegular(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("opening layer file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("layer file %s is not a regular file: %w", path, imgerr.ErrInvalidArgument)
	}
	return nil
}
