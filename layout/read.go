package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/verified"
)

// errNoLayout is matched by errors about a layout path that holds no
// layout at all; it matches imgutil.ErrNotFound.
var errNoLayout = fmt.Errorf("no layout: %w", imgutil.ErrNotFound)

// readImage returns the image in the layout at dir that matches platform.
// A dir that holds no layout gives an error matching errNoLayout (and
// imgutil.ErrNotFound); a layout without a matching image, one matching
// imgutil.ErrNotFound; a dir that is not a layout, imgutil.ErrInvalidArgument.
// Blobs found to match their digest are recorded in records.
func readImage(dir string, platform imgutil.Platform, records *verified.Records) (v1.Image, v1.Descriptor, error) {
	idx, err := openIndex(dir)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	descs, err := imageManifests(idx)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("reading layout %s: %w", dir, err)
	}
	d, err := pickManifest(idx, descs, platform)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("layout %s: %w", dir, err)
	}
	img, err := imageIn(idx, d.Digest)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("reading image %s in layout %s: %w", d.Digest, dir, err)
	}
	return withAbsentLayers(img, dir, records), d, nil
}

// openIndex opens the index.json of the layout at dir.
func openIndex(dir string) (v1.ImageIndex, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("layout %s: %w", dir, errNoLayout)
	}
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("layout path %s is not a directory: %w", dir, imgutil.ErrInvalidArgument)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("layout %s has no index.json: %w", dir, errNoLayout)
	}
	if err := smallMetadata(filepath.Join(dir, "index.json"), "index.json"); err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	idx, err := ggcr.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading layout %s: %w: %w", dir, imgutil.ErrInvalidArgument, err)
	}
	if err := checkMetadataBlobs(dir, idx, 0); err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	return idx, nil
}

// maxMetadataSize bounds the metadata files of a layout read whole
// (index.json, indexes, manifests, configs): they are small, and a huge
// one is refused before it is read.
const maxMetadataSize = 8 << 20

// smallMetadata checks that the file at path is a regular file (not a link
// out of the layout) of at most maxMetadataSize bytes.
func smallMetadata(path, what string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // absent (a sparse layout): reading it says so
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: %w", what, imgutil.ErrInvalidArgument)
	}
	if fi.Size() > maxMetadataSize {
		return fmt.Errorf("%s is %d bytes, more than the %d a manifest, config or index may have: %w",
			what, fi.Size(), maxMetadataSize, imgutil.ErrInvalidArgument)
	}
	return nil
}

// checkMetadataBlobs checks, before they are read whole, the indexes,
// manifests and configs idx leads to (see smallMetadata).
func checkMetadataBlobs(dir string, idx v1.ImageIndex, depth int) error {
	im, err := idx.IndexManifest()
	if err != nil || depth > 4 {
		return nil // reading it says what is wrong
	}
	blob := func(h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		if err := smallMetadata(blob(d.Digest), "blob "+d.Digest.String()); err != nil {
			return err
		}
		if d.MediaType.IsIndex() {
			if child, err := idx.ImageIndex(d.Digest); err == nil {
				if err := checkMetadataBlobs(dir, child, depth+1); err != nil {
					return err
				}
			}
			continue
		}
		if img, err := idx.Image(d.Digest); err == nil {
			if m, err := img.Manifest(); err == nil {
				if err := smallMetadata(blob(m.Config.Digest), "config "+m.Config.Digest.String()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// imageManifests lists the image manifests of idx, looking one level into
// nested indexes.
func imageManifests(idx v1.ImageIndex) (out []v1.Descriptor, err error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var unknown []types.MediaType
	defer func() {
		if len(out) == 0 && len(unknown) > 0 && err == nil {
			err = imgutil.ErrUnknownMediaType(unknown[0])
		}
	}()
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsImage():
			out = append(out, d)
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading nested index %s: %w", d.Digest, err)
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return nil, fmt.Errorf("reading nested index %s: %w", d.Digest, err)
			}
			for _, c := range cm.Manifests {
				if c.MediaType.IsImage() {
					out = append(out, c)
				}
			}
		default:
			unknown = append(unknown, d.MediaType)
		}
	}
	return out, nil
}

// imageIn finds the image with digest h in idx or an index nested in it.
func imageIn(idx v1.ImageIndex, h v1.Hash) (v1.Image, error) {
	if img, err := idx.Image(h); err == nil {
		return img, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsIndex() {
			continue
		}
		if child, err := idx.ImageIndex(d.Digest); err == nil {
			if img, err := child.Image(h); err == nil {
				return img, nil
			}
		}
	}
	return nil, fmt.Errorf("image %s: %w", h, imgutil.ErrNotFound)
}

// pickManifest chooses the manifest for platform: the only one, or the one
// whose platform (from the descriptor, else the config) matches. An unset
// platform means linux on this program's architecture.
func pickManifest(idx v1.ImageIndex, descs []v1.Descriptor, platform imgutil.Platform) (v1.Descriptor, error) {
	switch len(descs) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("no image manifest: %w", imgutil.ErrNotFound)
	case 1:
		return descs[0], nil
	}
	want := platform
	if want.OS == "" {
		want.OS = "linux"
	}
	if want.Architecture == "" {
		want.Architecture = runtime.GOARCH
	}
	for _, d := range descs {
		p := d.Platform
		if p == nil {
			img, err := imageIn(idx, d.Digest)
			if err != nil {
				continue
			}
			cfg, err := img.ConfigFile()
			if err != nil || cfg == nil {
				continue
			}
			p = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}
		}
		if matches(*p, want) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image manifest for platform %s/%s among %d: %w", want.OS, want.Architecture, len(descs), imgutil.ErrNotFound)
}

func matches(p v1.Platform, want imgutil.Platform) bool {
	return p.OS == want.OS && p.Architecture == want.Architecture &&
		(want.Variant == "" || p.Variant == want.Variant) &&
		(want.OSVersion == "" || p.OSVersion == want.OSVersion)
}
