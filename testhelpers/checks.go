package testhelpers

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
)

// emptyBlob is the digest of zero bytes: a layer described by it is a
// malformed image (an empty layer is an empty tar, 1024 bytes at least).
const emptyBlob = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// CheckImage fails the test unless img is well-formed: each layer blob as
// stored hashes to its descriptor's digest and size, and (uncompressed as
// its media type says) to the config's diffID; no descriptor is the empty
// blob; and validate.Image passes (on a view of the image whose
// uncompressed and zstd layers are shown gzipped, as validate.Image
// gunzips every layer).
func CheckImage(t testing.TB, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatalf("reading manifest: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("reading layers: %v", err)
	}
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) || len(layers) != len(m.Layers) {
		t.Fatalf("manifest has %d layers, config %d diffIDs, image %d layers", len(m.Layers), len(cfg.RootFS.DiffIDs), len(layers))
	}
	plain := false
	for i, d := range m.Layers {
		if d.Digest.String() == emptyBlob {
			t.Fatalf("layer %d is described by the empty blob %s", i, emptyBlob)
		}
		digest, size, diffID := blobSums(t, layers[i], d.MediaType)
		if digest != d.Digest || size != d.Size {
			t.Fatalf("layer %d blob is %s (%d bytes), descriptor says %s (%d bytes)", i, digest, size, d.Digest, d.Size)
		}
		if diffID != cfg.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d content has diffID %s, config says %s", i, diffID, cfg.RootFS.DiffIDs[i])
		}
		plain = plain || isPlain(d.MediaType) || d.MediaType == types.OCILayerZStd
	}
	if plain {
		img = gzippedView(t, img, m, cfg, layers)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
}

func isPlain(mt types.MediaType) bool {
	return mt == types.DockerUncompressedLayer || mt == types.OCIUncompressedLayer
}

// blobSums hashes a layer's stored blob and its uncompressed content
// (a plain tar, gzip or zstd as its media type mt says).
func blobSums(t testing.TB, l v1.Layer, mt types.MediaType) (digest v1.Hash, size int64, diffID v1.Hash) {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatalf("opening layer blob: %v", err)
	}
	defer rc.Close()
	stored, content := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var r io.Reader = pr
		switch {
		case mt == types.OCILayerZStd:
			zr, err := zstd.NewReader(pr)
			if err != nil {
				pr.CloseWithError(err)
				done <- err
				return
			}
			defer zr.Close()
			r = zr
		case !isPlain(mt):
			zr, err := gzip.NewReader(pr)
			if err != nil {
				pr.CloseWithError(err)
				done <- err
				return
			}
			r = zr
		}
		_, err := io.Copy(content, r)
		_, _ = io.Copy(io.Discard, pr)
		done <- err
	}()
	size, err = io.Copy(io.MultiWriter(stored, pw), rc)
	pw.CloseWithError(err)
	if err != nil {
		t.Fatalf("reading layer blob: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("reading layer content: %v", err)
	}
	return hashOf(stored.Sum(nil)), size, hashOf(content.Sum(nil))
}

func hashOf(b []byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(b)} }

// gzippedView returns img with every uncompressed layer shown gzipped.
func gzippedView(t testing.TB, img v1.Image, m *v1.Manifest, cfg *v1.ConfigFile, layers []v1.Layer) v1.Image {
	t.Helper()
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, m.MediaType), m.Config.MediaType)
	var adds []mutate.Addendum
	for i, l := range layers {
		if mt := m.Layers[i].MediaType; isPlain(mt) || mt == types.OCILayerZStd {
			gl, err := partial.UncompressedToLayer(storedTar{Layer: l, diffID: cfg.RootFS.DiffIDs[i], zstd: mt == types.OCILayerZStd})
			if err != nil {
				t.Fatal(err)
			}
			l = gl
		}
		adds = append(adds, mutate.Addendum{Layer: l})
	}
	out, err := mutate.Append(out, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = mutate.ConfigFile(out, cfg); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedTar is an uncompressed (or zstd) layer blob seen as a
// partial.UncompressedLayer.
type storedTar struct {
	v1.Layer
	diffID v1.Hash
	zstd   bool
}

func (s storedTar) DiffID() (v1.Hash, error)            { return s.diffID, nil }
func (s storedTar) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (s storedTar) Uncompressed() (io.ReadCloser, error) {
	rc, err := s.Compressed()
	if err != nil || !s.zstd {
		return rc, err
	}
	zr, err := zstd.NewReader(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, closeFunc(func() error { zr.Close(); return rc.Close() })}, nil
}

// closeFunc is a func as an io.Closer.
type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// DiffIDs returns the diffIDs of img's config as strings.
func DiffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	out := make([]string, len(cfg.RootFS.DiffIDs))
	for i, d := range cfg.RootFS.DiffIDs {
		out[i] = d.String()
	}
	return out
}

// CheckGetLayer reads the layer with diffID through get (an Image's
// GetLayer) and fails the test unless its content hashes to diffID.
func CheckGetLayer(t testing.TB, get func(string) (io.ReadCloser, error), diffID string) {
	t.Helper()
	rc, err := get(diffID)
	if err != nil {
		t.Fatalf("GetLayer(%s): %v", diffID, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("reading layer %s: %v", diffID, err)
	}
	if got := hashOf(h.Sum(nil)).String(); got != diffID {
		t.Fatalf("GetLayer(%s) content hashes to %s", diffID, got)
	}
}

// PlatformImage returns a random one-layer image whose config says
// linux/arch.
func PlatformImage(t testing.TB, arch string) v1.Image {
	t.Helper()
	return PlatformImageOfSize(t, arch, 256, 1)
}

// PlatformImageOfSize returns a random image of layers layers of size
// bytes each whose config says linux/arch.
func PlatformImageOfSize(t testing.TB, arch string, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	mustDo(t, err)
	cfg, err := img.ConfigFile()
	mustDo(t, err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cfg)
	mustDo(t, err)
	return img
}
