package fakes

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/layer"
)

// AddLayer adds the layer file at path, keyed by the sha256 of its bytes.
func (i *Image) AddLayer(path string) error {
	diffID, err := layer.FileSHA256(path)
	if err != nil {
		return fmt.Errorf("reading layer %s: %w", path, err)
	}
	return i.AddLayerWithDiffIDAndHistory(path, diffID.String(), v1.History{})
}

// AddLayerWithDiffID adds the layer file at path, keyed by diffID.
func (i *Image) AddLayerWithDiffID(path string, diffID string) error {
	return i.AddLayerWithDiffIDAndHistory(path, diffID, v1.History{})
}

// AddLayerWithDiffIDAndHistory adds the layer file at path, keyed by
// diffID, and appends history.
func (i *Image) AddLayerWithDiffIDAndHistory(path, diffID string, history v1.History) error {
	defer i.lock()()
	i.ensure()
	i.addedLayers = append(i.addedLayers, path)
	i.layerPaths[diffID] = path
	i.history = append(i.history, history)
	return nil
}

// AddOrReuseLayerWithHistory reuses the previous image's layer diffID when
// it was registered (AddPreviousLayer), else adds the file at path.
func (i *Image) AddOrReuseLayerWithHistory(path, diffID string, history v1.History) error {
	i.mu.Lock()
	_, reuse := i.previousLayers[diffID]
	i.mu.Unlock()
	if reuse {
		return i.ReuseLayerWithHistory(diffID, history)
	}
	return i.AddLayerWithDiffIDAndHistory(path, diffID, history)
}

// AddPreviousLayer registers the file at path as the previous image's
// layer sha, which ReuseLayer may then reuse.
func (i *Image) AddPreviousLayer(sha, path string) {
	defer i.lock()()
	i.ensure()
	i.previousLayers[sha] = path
}

// ReuseLayer reuses the previous image's layer sha: recorded (ReusedLayers)
// and readable by GetLayer. A layer not registered is an error naming it.
func (i *Image) ReuseLayer(sha string) error {
	defer i.lock()()
	return i.reuseLocked(sha)
}

func (i *Image) reuseLocked(sha string) error {
	i.ensure()
	path, ok := i.previousLayers[sha]
	if !ok {
		return fmt.Errorf("failed to reuse layer '%s': not found in the previous image", sha)
	}
	i.reusedLayers = append(i.reusedLayers, sha)
	i.layerPaths[sha] = path
	return nil
}

// ReuseLayerWithHistory is ReuseLayer that also appends history.
func (i *Image) ReuseLayerWithHistory(sha string, history v1.History) error {
	defer i.lock()()
	if err := i.reuseLocked(sha); err != nil {
		return err
	}
	i.history = append(i.history, history)
	return nil
}

// ReusedLayers are the layers ReuseLayer reused, in call order.
func (i *Image) ReusedLayers() []string { defer i.lock()(); return slices.Clone(i.reusedLayers) }

// GetLayer opens the file of an added or reused layer.
func (i *Image) GetLayer(sha string) (io.ReadCloser, error) {
	i.mu.Lock()
	path, ok := i.layerPaths[sha]
	i.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("failed to get layer with sha '%s'", sha)
	}
	return os.Open(path)
}

// TopLayer returns the top layer sha given to NewImage.
func (i *Image) TopLayer() (string, error) { defer i.lock()(); return i.topLayerSha, nil }

// AppLayerPath is the path of the first added layer.
func (i *Image) AppLayerPath() string { return i.addedLayer(0) }

// ConfigLayerPath is the path of the second added layer.
func (i *Image) ConfigLayerPath() string { return i.addedLayer(1) }

func (i *Image) addedLayer(n int) string {
	defer i.lock()()
	if n >= len(i.addedLayers) {
		return ""
	}
	return i.addedLayers[n]
}

// NumberOfAddedLayers is how many layers were added.
func (i *Image) NumberOfAddedLayers() int { defer i.lock()(); return len(i.addedLayers) }

// copyLayersLocked copies every layer file into a fresh temp dir and points
// the image at the copies, so a test may remove its own files.
func (i *Image) copyLayersLocked() error {
	dir, err := os.MkdirTemp("", "fake-image-layers-*")
	if err != nil {
		return fmt.Errorf("creating layer directory: %w", err)
	}
	i.saveDirs = append(i.saveDirs, dir)
	copies := map[string]string{}
	copyOf := func(src string) (string, error) {
		if src == "" {
			// A layer given without a file (callers' tests mock layers so)
			// stays without one.
			return "", nil
		}
		if c, ok := copies[src]; ok {
			return c, nil
		}
		dst := filepath.Join(dir, fmt.Sprintf("%d-%s", len(copies), filepath.Base(src)))
		if err := copyFile(src, dst); err != nil {
			return "", err
		}
		copies[src] = dst
		return dst, nil
	}
	for n, p := range i.addedLayers {
		c, err := copyOf(p)
		if err != nil {
			return err
		}
		i.addedLayers[n] = c
	}
	for sha, p := range i.layerPaths {
		c, err := copyOf(p)
		if err != nil {
			return err
		}
		i.layerPaths[sha] = c
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copying layer: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copying layer: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying layer %s: %w", src, err)
	}
	return out.Close()
}

// Cleanup removes the copies of layer files that saves made.
func (i *Image) Cleanup() error {
	defer i.lock()()
	var errs []error
	for _, d := range i.saveDirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	i.saveDirs = nil
	return errors.Join(errs...)
}
