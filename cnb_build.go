package editable

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/typedlayer"
)

// Built is the image as edited, frozen: the config as it will be saved and
// the layers with their final media types. Backends save from it. Its
// manifest (which needs every layer's compressed digest) is computed only
// when asked for, once.
type Built struct {
	// Config is the config file to save; do not modify it.
	Config *v1.ConfigFile
	// RawConfig is Config encoded, exactly the bytes to save.
	RawConfig []byte
	// Layers are the image's layers, bottom first, with their final media types.
	Layers []v1.Layer

	manifestType types.MediaType
	configType   types.MediaType
	annotations  map[string]string

	// mu guards the memoized manifest.
	mu       sync.Mutex
	manifest []byte
	image    v1.Image
}

// Build returns the image as edited so far, memoized until the next edit.
func (i *Image) Build() (*Built, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.built != nil {
		return i.built, nil
	}
	cfg := i.cfg.DeepCopy()
	if !i.preserveDigest {
		cfg = savedConfig(i.cfg, len(i.layers), i.createdAt, i.preserveHistory)
	}
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	layers := make([]v1.Layer, len(i.layers))
	for j, l := range i.layers {
		mt, err := imgutil.ConvertLayerMediaType(l, i.mediaTypes)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", j, err)
		}
		layers[j] = typedlayer.With(l, mt)
	}
	b := &Built{
		Config: cfg, RawConfig: raw, Layers: layers,
		manifestType: i.mediaTypes.ManifestType(), configType: i.mediaTypes.ConfigType(),
		annotations: maps.Clone(i.annotations),
	}
	derived, err := partial.CompressedToImage(builtCore{b})
	if err != nil {
		return nil, fmt.Errorf("building image: %w", err)
	}
	b.image = builtImage{Image: derived, b: b}
	i.built = b
	return b, nil
}

// savedConfig is cfg as a save writes it, by the existing library's rules
// (which image IDs of its users follow): created is createdAt and container
// is emptied; history entries that made no layer are dropped and, if the
// rest do not match the layers one to one, each layer gets a blank entry;
// with preserveHistory every entry keeps its fields but is dated createdAt,
// without it every entry is only that date.
func savedConfig(c *v1.ConfigFile, nLayers int, createdAt time.Time, preserveHistory bool) *v1.ConfigFile {
	cfg := c.DeepCopy()
	cfg.Created = v1.Time{Time: createdAt}
	cfg.Container = ""
	cfg.History = imgutil.NormalizedHistory(cfg.History, nLayers)
	for j := range cfg.History {
		if preserveHistory {
			cfg.History[j].Created = v1.Time{Time: createdAt}
		} else {
			cfg.History[j] = v1.History{Created: v1.Time{Time: createdAt}}
		}
	}
	return cfg
}

// SetCreatedAtAndHistory writes the created time and the normalized history
// that saving applies into the owned config, so that getters show them.
func (i *Image) SetCreatedAtAndHistory() error {
	b, err := i.Build()
	if err != nil {
		return err
	}
	return i.MutateConfigFile(func(c *v1.ConfigFile) {
		c.Created = b.Config.Created
		c.History = slices.Clone(b.Config.History)
	})
}

// Image returns the built image as a go-containerregistry image.
func (b *Built) Image() v1.Image { return b.image }

// ConfigDigest returns the sha256 digest of RawConfig.
func (b *Built) ConfigDigest() v1.Hash { return sha256Hash(b.RawConfig) }

// ManifestType returns the manifest media type.
func (b *Built) ManifestType() types.MediaType { return b.manifestType }

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

func sha256Hash(b []byte) v1.Hash {
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
	return nil, imgutil.ErrLayerNotFound{DiffID: h.String()}
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
	return nil, fmt.Errorf("blob %s: %w", h, imgutil.ErrNotFound)
}

// UnderlyingImage returns the edited image as a go-containerregistry image,
// or nil if it cannot be built; an image not edited nor saved is its base
// itself.
func (i *Image) UnderlyingImage() v1.Image {
	if base := i.asIs(); base != nil {
		return base
	}
	b, err := i.Build()
	if err != nil {
		return nil
	}
	return b.Image()
}

// Digest returns the manifest digest of the edited image; of an image not
// edited nor saved, the base's own (as its registry or layout has it).
func (i *Image) Digest() (v1.Hash, error) {
	if base := i.asIs(); base != nil {
		return base.Digest()
	}
	b, err := i.Build()
	if err != nil {
		return v1.Hash{}, err
	}
	return b.Image().Digest()
}

// ManifestSize returns the size of the edited image's manifest.
func (i *Image) ManifestSize() (int64, error) {
	if base := i.asIs(); base != nil {
		raw, err := base.RawManifest()
		return int64(len(raw)), err
	}
	b, err := i.Build()
	if err != nil {
		return 0, err
	}
	raw, err := b.RawManifest()
	return int64(len(raw)), err
}

// MediaType returns the manifest media type of the edited image.
func (i *Image) MediaType() (types.MediaType, error) {
	return i.MediaTypes().ManifestType(), nil
}

// Annotations returns the manifest annotations.
func (b *Built) Annotations() map[string]string { return maps.Clone(b.annotations) }

// ConfigType returns the config media type.
func (b *Built) ConfigType() types.MediaType { return b.configType }
