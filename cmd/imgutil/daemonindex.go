package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/userfile"
)

// daemonIndex is t, an image of a daemon, as a multi-platform image when
// it is one (the containerd image store: two platforms or more): the
// daemon's export of it, every platform it holds, unpacked into a
// temporary OCI layout (removed by done; every blob checked against its
// name as it is written). An index the daemon holds in part is copied as
// its part held (see heldPart). nil when t is one image; the copy then
// reads it as one.
func (s *session) daemonIndex(t target) (idx v1.ImageIndex, done func(), err error) {
	done = func() {}
	if t.kind != "docker" {
		return nil, done, nil
	}
	cli, err := s.docker()
	if err != nil {
		return nil, done, err
	}
	// An index only (the containerd image store), and its platforms only
	// from inspect's manifests (API 1.48): before that, a daemon tells
	// them only in the image's whole export, which every copy would then
	// read once more; such an image is copied as one platform, as before.
	res, err := cli.ImageInspect(s.ctx, t.name)
	if cerrdefs.IsNotFound(err) {
		return nil, done, nil // the copy says so
	}
	if err != nil {
		return nil, done, fmt.Errorf("inspecting %s: %w", t.name, err)
	}
	if res.Descriptor == nil || !types.MediaType(res.Descriptor.MediaType).IsIndex() || versions.LessThan(cli.ClientVersion(), "1.48") {
		return nil, done, nil
	}
	if res, err = cli.ImageInspect(s.ctx, t.name, client.ImageInspectWithManifests(true)); err != nil {
		return nil, done, fmt.Errorf("inspecting %s: %w", t.name, err)
	}
	// Inspect lists every platform of the index, held or not (a pull
	// takes one): only those the daemon holds count.
	var held []*ocispec.Platform
	for _, m := range res.Manifests {
		if m.Kind == image.ManifestKindImage && m.Available && m.ImageData != nil && m.ImageData.Platform.OS != "unknown" {
			held = append(held, &m.ImageData.Platform)
		}
	}
	switch {
	case len(held) == 1 && s.platform == nil:
		// The image of the one platform held, whatever this machine runs.
		p := held[0]
		s.platform = &imgutil.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
		return nil, done, nil
	case len(held) < 2:
		return nil, done, nil
	}
	// Named for this process: a later run removes it if this one is killed.
	userfile.SweepStale(os.TempDir(), "imgutil-cli-")
	dir, err := os.MkdirTemp("", userfile.OwnedPattern("imgutil-cli-"))
	if err != nil {
		return nil, done, err
	}
	done = func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			done()
			done = func() {}
		}
	}()
	// Exported by ID: a name without a tag would export every tag of its
	// repository, and a tag may move meanwhile.
	want, err := v1.NewHash(res.Descriptor.Digest.String())
	if err != nil {
		return nil, done, fmt.Errorf("inspecting %s: %w", t.name, err)
	}
	rc, err := cli.ImageSave(s.ctx, []string{want.String()})
	if err != nil {
		return nil, done, fmt.Errorf("exporting %s: %w", t.name, err)
	}
	err = unpackLayout(rc, dir)
	_ = rc.Close()
	if err != nil {
		return nil, done, fmt.Errorf("exporting %s: %w", t.name, err)
	}
	p, err := ggcrlayout.FromPath(dir)
	if err != nil {
		return nil, done, fmt.Errorf("exporting %s: %w", t.name, err)
	}
	idx, err = p.ImageIndex()
	if err != nil {
		return nil, done, fmt.Errorf("exporting %s: %w", t.name, err)
	}
	// index.json names the index (beside referrers, as the daemon may add).
	if idx, err = idx.ImageIndex(want); err != nil {
		return nil, done, fmt.Errorf("exporting %s: the export lacks its index %s: %w", t.name, want, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, done, fmt.Errorf("exporting %s: %w", t.name, err)
	}
	missing, err := built.Missing(m, layoutStore(dir))
	if err != nil {
		return nil, done, fmt.Errorf("exporting %s: %w", t.name, err)
	}
	if len(missing) > 0 {
		part, err := s.heldPart(t.name, idx, missing, fmt.Errorf("the daemon holds none of its platforms whole: %w", imgutil.ErrNotFound))
		if part == nil || err != nil {
			done()
			return nil, func() {}, err
		}
		return part, done, nil
	}
	if len(platformsIn(m)) < 2 {
		done()
		return nil, func() {}, nil
	}
	return idx, done, nil
}

// layoutStore is what the layout dir holds of an index's blobs.
func layoutStore(dir string) built.Store {
	blob := func(h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }
	read := func(h v1.Hash) ([]byte, error) {
		if fi, err := os.Stat(blob(h)); err == nil && fi.Size() > maxLayoutFile {
			return nil, fmt.Errorf("blob %s is %d bytes: %w", h, fi.Size(), imgutil.ErrInvalidArgument)
		}
		return os.ReadFile(blob(h))
	}
	return built.Store{
		Has: func(h v1.Hash) (bool, error) {
			_, err := os.Stat(blob(h))
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return err == nil, err
		},
		Manifest: func(d v1.Descriptor) (*v1.Manifest, error) {
			raw, err := read(d.Digest)
			if err != nil {
				return nil, err
			}
			return v1.ParseManifest(bytes.NewReader(raw))
		},
		Index: func(d v1.Descriptor) (*v1.IndexManifest, error) {
			raw, err := read(d.Digest)
			if err != nil {
				return nil, err
			}
			return v1.ParseIndexManifest(bytes.NewReader(raw))
		},
	}
}

// maxLayoutFile bounds index.json and oci-layout in an export.
const maxLayoutFile = 8 << 20

// unpackLayout writes the OCI layout of the archive r (a daemon's export)
// into dir: index.json, oci-layout and blobs/sha256/<hex>, each blob
// hashed as it is written and refused when it is not what its name says.
// Nothing else is written (manifest.json, the legacy layout, links), so
// no entry can name a path outside dir.
func unpackLayout(r io.Reader, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		switch {
		case name == "index.json" || name == "oci-layout":
			if hdr.Size > maxLayoutFile {
				return fmt.Errorf("%s is %d bytes: %w", name, hdr.Size, imgutil.ErrInvalidArgument)
			}
			if err := writeFrom(filepath.Join(dir, name), tr, ""); err != nil {
				return err
			}
		case strings.HasPrefix(name, "blobs/sha256/"):
			hexName := strings.TrimPrefix(name, "blobs/sha256/")
			if _, err := hex.DecodeString(hexName); err != nil || len(hexName) != 64 || strings.ToLower(hexName) != hexName {
				continue
			}
			if err := writeFrom(filepath.Join(dir, "blobs", "sha256", hexName), tr, hexName); err != nil {
				return err
			}
		}
	}
}

// writeFrom writes r to the new file p; with want, r's sha256 must be
// want.
func writeFrom(p string, r io.Reader, want string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil // an archive may carry a blob twice
	}
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && want != "" && hex.EncodeToString(h.Sum(nil)) != want {
		err = fmt.Errorf("blob %s of the archive has digest sha256:%s: %w", want, hex.EncodeToString(h.Sum(nil)), imgutil.ErrInvalidArgument)
	}
	if err != nil {
		os.Remove(p)
	}
	return err
}
