package fakes

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imgbridge/imgutil"
)

// Save is SaveAs under the image's name.
func (i *Image) Save(additionalNames ...string) error {
	return i.SaveAs(i.Name(), additionalNames...)
}

// SaveAs copies the layer files into a fresh temp dir (Cleanup removes it)
// and records name and additionalNames as saved. A name that is not an
// image reference is one imgutil.SaveDiagnostic of the imgutil.SaveError
// returned; the others are still recorded.
func (i *Image) SaveAs(name string, additionalNames ...string) error {
	defer i.lock()()
	i.ensure()
	if err := i.copyLayersLocked(); err != nil {
		return err
	}
	var diags []imgutil.SaveDiagnostic
	for _, n := range append([]string{name}, additionalNames...) {
		if _, err := parseName(n); err != nil {
			diags = append(diags, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
			continue
		}
		i.savedNames[n] = true
	}
	if i.refName != "" {
		i.savedAnnotations = map[string]string{refNameAnnotation: i.refName}
	}
	if len(diags) > 0 {
		return imgutil.SaveError{Errors: diags}
	}
	return nil
}

func parseName(n string) (name.Reference, error) {
	return name.ParseReference(n, name.WeakValidation)
}

// IsSaved reports whether any name was saved.
func (i *Image) IsSaved() bool { defer i.lock()(); return len(i.savedNames) > 0 }

// SavedNames are the names saved, in no particular order.
func (i *Image) SavedNames() []string {
	defer i.lock()()
	return slices.Collect(maps.Keys(i.savedNames))
}

// SavedAnnotations are the annotations the last save wrote: the ref name
// AnnotateRefName recorded.
func (i *Image) SavedAnnotations() map[string]string {
	defer i.lock()()
	return maps.Clone(i.savedAnnotations)
}

// FindLayerWithPath returns the path of the newest added layer holding an
// entry named exactly path. Otherwise the error lists every added layer
// with its entries ([F] file, [D] directory, [S] symbolic link).
func (i *Image) FindLayerWithPath(path string) (string, error) {
	i.mu.Lock()
	layers := slices.Clone(i.addedLayers)
	i.mu.Unlock()
	for n := len(layers) - 1; n >= 0; n-- {
		entries, err := tarEntries(layers[n])
		if err != nil {
			return "", err
		}
		for _, h := range entries {
			if h.Name == path {
				return layers[n], nil
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "could not find '%s' in any layer.\n\n", path)
	for _, l := range layers {
		entries, err := tarEntries(l)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "Layer %s:\n", l)
		if len(entries) == 0 {
			b.WriteString("  (empty)\n")
		}
		for _, h := range entries {
			switch h.Typeflag {
			case tar.TypeDir:
				fmt.Fprintf(&b, "  - [D] %s\n", h.Name)
			case tar.TypeSymlink:
				fmt.Fprintf(&b, "  - [S] %s -> %s\n", h.Name, h.Linkname)
			default:
				fmt.Fprintf(&b, "  - [F] %s\n", h.Name)
			}
		}
	}
	return "", errors.New(b.String())
}

// tarEntries reads the headers of the layer tar at path.
func tarEntries(path string) ([]*tar.Header, error) {
	if path == "" {
		return nil, nil // a layer given without a file
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", path, err)
	}
	defer f.Close()
	var out []*tar.Header
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading layer %s: %w", path, err)
		}
		out = append(out, h)
	}
}
