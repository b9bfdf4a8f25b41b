// Package built is an edited image frozen for saving: its config bytes and
// layers, and a manifest computed only when asked for. The editable core
// (imgutil.CNBImageCore) makes one per state; backends save from it.
package built

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// Built is the image as edited, frozen: the config as it will be saved and
// the layers with their final media types. Its manifest (which needs every
// layer's compressed digest) is computed only when asked for, once.
type Built struct {
	// Config is the config file to save; do not modify it.
	Config *v1.ConfigFile
	// RawConfig is Config encoded, exactly the bytes to save.
	RawConfig []byte
	// Layers are the image's layers, bottom first, with their final media types.
	Layers []v1.Layer
	// Source is the image FromImage froze as it is (nil for an edited one).
	Source v1.Image

	manifestType types.MediaType
	configType   types.MediaType
	annotations  map[string]string

	// mu guards the memoized manifest.
	mu       sync.Mutex
	manifest []byte
	image    v1.Image
}

// New freezes cfg (encoded as is) and layers under the given media types
// and manifest annotations.
func New(cfg *v1.ConfigFile, layers []v1.Layer, manifestType, configType types.MediaType, annotations map[string]string) (*Built, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return WithLayers(cfg, raw, layers, manifestType, configType, annotations)
}

// WithLayers is New for a config already encoded (raw, kept byte for
// byte): the same image with other layer objects (lazy ones, for a push).
func WithLayers(cfg *v1.ConfigFile, raw []byte, layers []v1.Layer, manifestType, configType types.MediaType, annotations map[string]string) (*Built, error) {
	b := &Built{
		Config: cfg, RawConfig: raw, Layers: layers,
		manifestType: manifestType, configType: configType, annotations: maps.Clone(annotations),
	}
	derived, err := partial.CompressedToImage(builtCore{b})
	if err != nil {
		return nil, fmt.Errorf("building image: %w", err)
	}
	b.image = builtImage{Image: derived, b: b}
	return b, nil
}

// Image returns the built image as a go-containerregistry image.
func (b *Built) Image() v1.Image { return b.image }

// ConfigDigest returns the sha256 digest of RawConfig.
func (b *Built) ConfigDigest() v1.Hash { return SHA256(b.RawConfig) }

// ManifestType returns the manifest media type.
func (b *Built) ManifestType() types.MediaType { return b.manifestType }

// ConfigType returns the config media type.
func (b *Built) ConfigType() types.MediaType { return b.configType }

// Annotations returns the manifest annotations.
func (b *Built) Annotations() map[string]string { return maps.Clone(b.annotations) }

// RawManifest returns the manifest, computing it once.
func (b *Built) RawManifest() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.manifest != nil {
		return b.manifest, nil
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     b.manifestType,
		Config:        v1.Descriptor{MediaType: b.configType, Size: int64(len(b.RawConfig)), Digest: b.ConfigDigest()},
		Layers:        make([]v1.Descriptor, len(b.Layers)),
	}
	if len(b.annotations) > 0 {
		m.Annotations = b.annotations
	}
	// Layers cheaper to read together (a daemon's: one stream per image)
	// learn their sizes and digests in one go.
	for _, l := range b.Layers {
		if p, ok := l.(Prefetcher); ok {
			if err := p.Prefetch(b.Layers); err != nil {
				return nil, err
			}
			break
		}
	}
	for j, l := range b.Layers {
		d, err := partial.Descriptor(l)
		if err != nil {
			return nil, fmt.Errorf("describing layer %d: %w", j, err)
		}
		m.Layers[j] = *d
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	b.manifest = raw
	return raw, nil
}

// SHA256 is the sha256 digest of b.
func SHA256(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// Prefetcher is a layer that is cheaper to read together with others of
// its kind: Prefetch reads, among layers, every one it can, at once.
type Prefetcher interface {
	Prefetch(layers []v1.Layer) error
}

// builtImage hands out the layers themselves, not partial's wrappers of
// them: writers recognize a layer by its type (go-containerregistry mounts
// a *remote.MountableLayer from its repository instead of uploading it).
type builtImage struct {
	v1.Image
	b *Built
}

func (i builtImage) Layers() ([]v1.Layer, error) { return slices.Clone(i.b.Layers), nil }

func (i builtImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.b.Layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return i.Image.LayerByDigest(h)
}

func (i builtImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	if j := slices.Index(i.b.Config.RootFS.DiffIDs, h); j >= 0 {
		return i.b.Layers[j], nil
	}
	return nil, imgerr.ErrLayerNotFound{DiffID: h.String()}
}

// builtCore is the partial.CompressedImageCore of a Built.
type builtCore struct{ b *Built }

func (c builtCore) RawConfigFile() ([]byte, error)      { return c.b.RawConfig, nil }
func (c builtCore) MediaType() (types.MediaType, error) { return c.b.manifestType, nil }
func (c builtCore) RawManifest() ([]byte, error)        { return c.b.RawManifest() }

func (c builtCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == c.b.ConfigDigest() {
		return static.NewLayer(bytes.Clone(c.b.RawConfig), c.b.configType), nil
	}
	for _, l := range c.b.Layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("blob %s: %w", h, imgerr.ErrNotFound)
}

// FromImage is img frozen as it is: its own config and manifest bytes and
// layers (an image saved with its digest preserved).
//
// An image that is a rebuilt view of what its store holds (a daemon image,
// whose config is rebuilt from inspect) offers the stored one: AsStored.
// Source is then the view the Built was made of.
func FromImage(img v1.Image) (*Built, error) {
	if s, ok := img.(interface{ AsStored() (v1.Image, error) }); ok {
		stored, err := s.AsStored()
		if err != nil {
			return nil, err
		}
		img = stored
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil || mt == "" {
		mt = m.MediaType
	}
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	return &Built{
		Config: cfg, RawConfig: raw, Layers: layers,
		manifestType: mt, configType: m.Config.MediaType, annotations: maps.Clone(m.Annotations),
		manifest: rawManifest, image: img, Source: img,
	}, nil
}
