package imgutil

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/userfile"
)

// writeIndexLayout writes ii as an OCI layout in the empty directory dir:
// every manifest, config and layer blob it can read. A layer blob
// its source lacks (an index read from a sparse layout) stays absent.
func writeIndexLayout(dir string, ii v1.ImageIndex) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	if err := writeIndexBlobs(dir, ii); err != nil {
		return err
	}
	raw, err := ii.RawManifest()
	if err != nil {
		return fmt.Errorf("reading index manifest: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644)
}

func writeIndexBlobs(dir string, ii v1.ImageIndex) error {
	m, err := ii.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading index manifest: %w", err)
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("reading index %s: %w", d.Digest, err)
			}
			if err := writeIndexBlobs(dir, child); err != nil {
				return err
			}
			raw, err := child.RawManifest()
			if err != nil {
				return fmt.Errorf("reading index %s: %w", d.Digest, err)
			}
			if err := writeBlobBytes(dir, d.Digest, raw); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := ii.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("reading image %s: %w", d.Digest, err)
			}
			if err := writeImageBlobs(dir, d.Digest, img); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeImageBlobs(dir string, digest v1.Hash, img v1.Image) error {
	raw, err := img.RawManifest()
	if absent(err) {
		return nil // nothing of the image is here: its descriptor is all
	}
	if err != nil {
		return fmt.Errorf("reading manifest %s: %w", digest, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("parsing manifest %s: %w", digest, err)
	}
	// Layers as the manifest lists them: reading them through the image
	// would need its config, which may be absent too.
	for _, ld := range m.Layers {
		l, err := img.LayerByDigest(ld.Digest)
		if absent(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading layer %s of %s: %w", ld.Digest, digest, err)
		}
		if err := writeLayerBlob(dir, l); err != nil {
			return fmt.Errorf("image %s: %w", digest, err)
		}
	}
	rawCfg, err := img.RawConfigFile()
	switch {
	case absent(err):
	case err != nil:
		return fmt.Errorf("reading config of %s: %w", digest, err)
	default:
		if err := writeBlobBytes(dir, m.Config.Digest, rawCfg); err != nil {
			return err
		}
	}
	return writeBlobBytes(dir, digest, raw)
}

// absent reports whether err says a blob is not where it was looked for
// (a sparse layout): what is absent there stays absent where it is written.
func absent(err error) bool {
	return err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotFound))
}

// writeLayerBlob copies l's compressed bytes into the layout, unless the
// blob is there already or its source lacks it.
func writeLayerBlob(dir string, l v1.Layer) error {
	if a, ok := l.(interface{ Absent() bool }); ok && a.Absent() {
		return nil
	}
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("reading layer digest: %w", err)
	}
	path := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	rc, err := l.Compressed()
	if absent(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading layer %s: %w", d, err)
	}
	defer rc.Close()
	return userfile.WriteAtomic(path, rc)
}

func writeBlobBytes(dir string, d v1.Hash, b []byte) error {
	return os.WriteFile(filepath.Join(dir, "blobs", d.Algorithm, d.Hex), b, 0o644)
}
