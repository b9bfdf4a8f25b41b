package imgutil

import (
	"fmt"
	"io"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/built"

	"github.com/imgbridge/imgutil/internal/layer"
)

func parseDiffID(diffID string) (v1.Hash, error) {
	h, err := v1.NewHash(diffID)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parsing diff ID %q: %w: %w", diffID, errInvalid, err)
	}
	if h.Algorithm != "sha256" {
		return v1.Hash{}, fmt.Errorf("diff ID %q: only sha256 digests name layers: %w", diffID, errInvalid)
	}
	return h, nil
}

// TopLayer returns the diffID of the top layer.
func (i *CNBImageCore) TopLayer() (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	ids := i.cfg.RootFS.DiffIDs
	if len(ids) == 0 {
		return "", fmt.Errorf("image has no layers: %w", ErrNotFound)
	}
	return ids[len(ids)-1].String(), nil
}

// Layer returns the image's layer with diffID, or ErrLayerNotFound.
func (i *CNBImageCore) Layer(diffID v1.Hash) (v1.Layer, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if j := slices.Index(i.cfg.RootFS.DiffIDs, diffID); j >= 0 {
		return i.layers[j], nil
	}
	return nil, ErrLayerNotFound{DiffID: diffID.String()}
}

// GetLayer opens the image's layer with diffID as an uncompressed tar.
func (i *CNBImageCore) GetLayer(diffID string) (io.ReadCloser, error) {
	h, err := parseDiffID(diffID)
	if err != nil {
		return nil, err
	}
	l, err := i.Layer(h)
	if err != nil {
		return nil, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", diffID, err)
	}
	return rc, nil
}

// AddLayer adds the layer file at path (plain or gzip tar) on top.
func (i *CNBImageCore) AddLayer(path string) error {
	return i.AddLayerWithDiffIDAndHistory(path, "", v1.History{})
}

// AddLayerWithDiffID adds the layer file at path, checking that its content
// has diffID (when not empty): a mismatch matches ErrDiffIDMismatch.
func (i *CNBImageCore) AddLayerWithDiffID(path, diffID string) error {
	return i.AddLayerWithDiffIDAndHistory(path, diffID, v1.History{})
}

// AddLayerWithDiffIDAndHistory adds the layer file at path with history.
func (i *CNBImageCore) AddLayerWithDiffIDAndHistory(path, diffID string, history v1.History) error {
	l, err := i.layerFromFile(path, diffID)
	if err != nil {
		return err
	}
	return i.AddLayerWithHistory(l, history)
}

func (i *CNBImageCore) layerFromFile(path, diffID string) (*layer.File, error) {
	if diffID == "" {
		l, err := layer.FromFile(path, i.MediaTypes().LayerType(), i.caches)
		if err != nil {
			return nil, fmt.Errorf("adding layer: %w", err)
		}
		return l, nil
	}
	want, err := parseDiffID(diffID)
	if err != nil {
		return nil, err
	}
	// The content is checked against diffID as it is read out on save.
	l, err := layer.FromFileWithDiffID(path, want, i.MediaTypes().LayerType(), i.caches)
	if err != nil {
		return nil, fmt.Errorf("adding layer: %w", err)
	}
	return l, nil
}

// AddLayerWithHistory adds l on top with history.
func (i *CNBImageCore) AddLayerWithHistory(l v1.Layer, history v1.History) error {
	diffID, err := l.DiffID()
	if err != nil {
		return fmt.Errorf("getting layer diff ID: %w", err)
	}
	return i.edit(func() error {
		i.appendLocked(l, diffID, history)
		return nil
	})
}

func (i *CNBImageCore) appendLocked(l v1.Layer, diffID v1.Hash, history v1.History) {
	// Keep history aligned with layers before appending to it.
	i.cfg.History = alignedHistory(i.cfg.History, len(i.layers))
	history.EmptyLayer = false
	history.Created = v1.Time{Time: i.createdAt}
	i.layers = append(i.layers, l)
	i.cfg.RootFS.DiffIDs = append(i.cfg.RootFS.DiffIDs, diffID)
	i.cfg.History = append(i.cfg.History, history)
}

// alignedHistory returns history if its non-empty entries match nLayers,
// else blank entries, one per layer.
func alignedHistory(history []v1.History, nLayers int) []v1.History {
	if countLayers(history) == nLayers {
		return history
	}
	return make([]v1.History, nLayers)
}

// layerHistory returns the history entry of layer idx in cfg, or a blank one.
func layerHistory(cfg *v1.ConfigFile, idx int) v1.History {
	if countLayers(cfg.History) != len(cfg.RootFS.DiffIDs) {
		return v1.History{}
	}
	n := 0
	for _, h := range cfg.History {
		if h.EmptyLayer {
			continue
		}
		if n == idx {
			return h
		}
		n++
	}
	return v1.History{}
}

func countLayers(history []v1.History) int {
	n := 0
	for _, h := range history {
		if !h.EmptyLayer {
			n++
		}
	}
	return n
}

// PreviousImageHasLayer reports whether the previous image has a layer with diffID.
func (i *CNBImageCore) PreviousImageHasLayer(diffID string) (bool, error) {
	h, err := parseDiffID(diffID)
	if err != nil {
		return false, err
	}
	if i.previous == nil {
		return false, nil
	}
	cfg, err := i.previous.ConfigFile()
	if err != nil {
		return false, fmt.Errorf("reading previous image: %w", err)
	}
	return slices.Contains(cfg.RootFS.DiffIDs, h), nil
}

// previousLayer returns the previous image's layer with diffID and its history.
func (i *CNBImageCore) previousLayer(diffID string) (v1.Layer, v1.Hash, v1.History, error) {
	h, err := parseDiffID(diffID)
	if err != nil {
		return nil, h, v1.History{}, err
	}
	notFound := ErrLayerNotFound{DiffID: h.String()}
	if i.previous == nil {
		return nil, h, v1.History{}, fmt.Errorf("no previous image: %w", notFound)
	}
	cfg, err := i.previous.ConfigFile()
	if err != nil {
		return nil, h, v1.History{}, fmt.Errorf("reading previous image: %w", err)
	}
	idx := slices.Index(cfg.RootFS.DiffIDs, h)
	if idx < 0 {
		// The existing library's words, which callers match.
		return nil, h, v1.History{}, fmt.Errorf("previous image: failed to find diffID %s in config file: %w", h, notFound)
	}
	l, err := i.previous.LayerByDiffID(h)
	if err != nil {
		return nil, h, v1.History{}, fmt.Errorf("previous image layer %s: %w", h, err)
	}
	return l, h, layerHistory(cfg, idx), nil
}

// ReuseLayer adds the previous image's layer with diffID on top, with the
// history that layer has there. Without a previous image, or when it lacks
// the layer, the error matches ErrLayerNotFound.
func (i *CNBImageCore) ReuseLayer(diffID string) error {
	l, h, history, err := i.previousLayer(diffID)
	if err != nil {
		return err
	}
	return i.edit(func() error {
		i.appendLocked(l, h, history)
		return nil
	})
}

// ReuseLayerWithHistory adds the previous image's layer with diffID on top,
// with history.
func (i *CNBImageCore) ReuseLayerWithHistory(diffID string, history v1.History) error {
	l, h, _, err := i.previousLayer(diffID)
	if err != nil {
		return err
	}
	return i.edit(func() error {
		i.appendLocked(l, h, history)
		return nil
	})
}

// AddOrReuseLayerWithHistory reuses the previous image's layer with diffID
// when it has one, and otherwise adds the layer file at path.
func (i *CNBImageCore) AddOrReuseLayerWithHistory(path, diffID string, history v1.History) error {
	has, err := i.PreviousImageHasLayer(diffID)
	if err != nil {
		return err
	}
	if has {
		return i.ReuseLayerWithHistory(diffID, history)
	}
	return i.AddLayerWithDiffIDAndHistory(path, diffID, history)
}

// Rebase replaces the layers up to and including baseTopLayerDiffID with
// the layers of newBase, keeping the layers above it and the config.
func (i *CNBImageCore) Rebase(baseTopLayerDiffID string, newBase Image) error {
	top, err := parseDiffID(baseTopLayerDiffID)
	if err != nil {
		return err
	}
	nbCfg, nbLayers, err := configAndLayers(newBase)
	if err != nil {
		return fmt.Errorf("reading new base image: %w", err)
	}
	// A new base that was not found (a typo in its name) would strip the
	// image of its base layers: refuse it. An image with no layers that
	// exists is a deliberate scratch base.
	if len(nbLayers) == 0 && !newBase.Found() {
		return fmt.Errorf("rebasing onto %s: new base image: %w", newBase.Name(), ErrNotFound)
	}
	return i.edit(func() error {
		idx := slices.Index(i.cfg.RootFS.DiffIDs, top)
		if idx < 0 {
			return fmt.Errorf("rebasing: old base top layer: %w", ErrLayerNotFound{DiffID: top.String()})
		}
		var history []v1.History
		for j := range nbLayers {
			history = append(history, layerHistory(nbCfg, j))
		}
		for j := idx + 1; j < len(i.layers); j++ {
			history = append(history, layerHistory(i.cfg, j))
		}
		i.layers = append(slices.Clone(nbLayers), i.layers[idx+1:]...)
		i.cfg.RootFS.DiffIDs = append(slices.Clone(nbCfg.RootFS.DiffIDs), i.cfg.RootFS.DiffIDs[idx+1:]...)
		i.cfg.History = history
		return nil
	})
}

// configAndLayers returns an image's config and layers: from the core when
// img is one of ours (no manifest needed), else from its v1.Image.
func configAndLayers(img Image) (*v1.ConfigFile, []v1.Layer, error) {
	if c, ok := img.(interface{ build() (*built.Built, error) }); ok {
		frozen, err := c.build()
		if err != nil {
			return nil, nil, err
		}
		return frozen.Config, frozen.Layers, nil
	}
	u := img.UnderlyingImage()
	if u == nil {
		return nil, nil, fmt.Errorf("image has no content: %w", ErrInvalidArgument)
	}
	cfg, err := GetConfigFile(u)
	if err != nil {
		return nil, nil, err
	}
	layers, err := u.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("reading layers: %w", err)
	}
	return cfg, layers, nil
}
