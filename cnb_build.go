package imgutil

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/typedlayer"
)

func init() {
	built.Register(
		func(c any) (*built.Built, error) { return c.(*CNBImageCore).build() },
		func(c any) (*built.Built, error) { return c.(*CNBImageCore).buildForSave() })
}

// build returns the image as edited so far, frozen, memoized until the next
// edit: its config as it is now (created time and history are normalized
// by a save, not before) and its layers with their final media types.
// Backends save from it (built.Of).
func (i *CNBImageCore) build() (*built.Built, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.buildLocked()
}

func (i *CNBImageCore) buildLocked() (*built.Built, error) {
	if i.built != nil {
		return i.built, nil
	}
	if i.preserveDigest && !i.edited && i.base != nil && i.baseAsIs {
		// Saved with its digest preserved and not edited: the base, byte
		// for byte (blobs already compressed go as they are).
		b, err := built.FromImage(i.base)
		if err != nil {
			return nil, err
		}
		i.built = b
		return b, nil
	}
	cfg := i.cfg.DeepCopy()
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	layers := make([]v1.Layer, len(i.layers))
	for j, l := range i.layers {
		mt, err := ConvertLayerMediaType(l, i.mediaTypes)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", j, err)
		}
		layers[j] = typedlayer.With(l, mt)
	}
	b, err := built.New(cfg, layers, i.mediaTypes.ManifestType(), i.mediaTypes.ConfigType(), i.annotations)
	if err != nil {
		return nil, err
	}
	i.built = b
	return b, nil
}

// PreservedBase returns the base image when the image is saved as it is
// (PreserveDigest, not edited): a store that holds the base can then name
// it instead of writing it. Nil otherwise.
func (i *CNBImageCore) PreservedBase() v1.Image {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.preserveDigest && !i.edited && i.base != nil && i.baseAsIs {
		return i.base
	}
	return nil
}

// buildForSave is build for a save (built.ForSave): unless the digest is preserved, it
// first normalizes created time and history as a save writes them
// (SetCreatedAtAndHistory). From then on the image is what was saved, no
// longer its base as is.
func (i *CNBImageCore) buildForSave() (*built.Built, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.saved = true
	if !i.preserveDigest {
		i.cfg = savedConfig(i.cfg, len(i.layers), i.createdAt, i.preserveHistory)
		i.built = nil
	}
	return i.buildLocked()
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
	cfg.History = NormalizedHistory(cfg.History, nLayers)
	for j := range cfg.History {
		if preserveHistory {
			cfg.History[j].Created = v1.Time{Time: createdAt}
		} else {
			cfg.History[j] = v1.History{Created: v1.Time{Time: createdAt}}
		}
	}
	return cfg
}

// SetCreatedAtAndHistory writes the created time and the history a save
// writes into the config, so that getters show them.
func (i *CNBImageCore) SetCreatedAtAndHistory() error {
	return i.edit(func() error {
		i.cfg = savedConfig(i.cfg, len(i.layers), i.createdAt, i.preserveHistory)
		return nil
	})
}

// current is the image as a go-containerregistry image now: the base
// itself while nothing was edited nor saved, else the built edits.
func (i *CNBImageCore) current() (v1.Image, error) {
	if base := i.asIs(); base != nil {
		return base, nil
	}
	b, err := i.build()
	if err != nil {
		return nil, err
	}
	return b.Image(), nil
}

// UnderlyingImage returns the image as a go-containerregistry image at
// this moment (the base itself while nothing was edited nor saved), or nil
// if it cannot be built. The embedded v1.Image follows later edits too.
func (i *CNBImageCore) UnderlyingImage() v1.Image {
	img, err := i.current()
	if err != nil {
		return nil
	}
	return img
}

// Digest returns the manifest digest of the edited image; of an image not
// edited nor saved, the base's own (as its registry or layout has it).
func (i *CNBImageCore) Digest() (v1.Hash, error) {
	img, err := i.current()
	if err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// ManifestSize returns the size of the image's manifest.
func (i *CNBImageCore) ManifestSize() (int64, error) {
	img, err := i.current()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	return int64(len(raw)), err
}

// MediaType returns the manifest media type of the edited image.
func (i *CNBImageCore) MediaType() (types.MediaType, error) {
	if base := i.asIs(); base != nil {
		if mt, err := base.MediaType(); err == nil && mt != "" {
			return mt, nil
		}
	}
	return i.MediaTypes().ManifestType(), nil
}

// liveImage is the core as a v1.Image: each call answers for the image as
// it is at that moment (see current).
type liveImage struct{ c *CNBImageCore }

func (l liveImage) MediaType() (types.MediaType, error) { return l.c.MediaType() }
func (l liveImage) Digest() (v1.Hash, error)            { return l.c.Digest() }

func (l liveImage) Layers() ([]v1.Layer, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.Layers()
}

func (l liveImage) Size() (int64, error) { return l.c.ManifestSize() }

func (l liveImage) ConfigName() (v1.Hash, error) {
	img, err := l.c.current()
	if err != nil {
		return v1.Hash{}, err
	}
	return img.ConfigName()
}

func (l liveImage) ConfigFile() (*v1.ConfigFile, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.ConfigFile()
}

func (l liveImage) RawConfigFile() ([]byte, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.RawConfigFile()
}

func (l liveImage) Manifest() (*v1.Manifest, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.Manifest()
}

func (l liveImage) RawManifest() ([]byte, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.RawManifest()
}

func (l liveImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.LayerByDigest(h)
}

func (l liveImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	img, err := l.c.current()
	if err != nil {
		return nil, err
	}
	return img.LayerByDiffID(h)
}
