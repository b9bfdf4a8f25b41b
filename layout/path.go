package layout

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// Path is an OCI layout directory, with go-containerregistry's layout.Path
// methods plus AppendImage options for sparse images.
type Path struct {
	ggcr.Path
}

// AppendOption configures Path.AppendImage.
type AppendOption func(*appendOptions)

type appendOptions struct {
	withoutLayers bool
	annotations   map[string]string
}

// WithoutLayers appends the manifest and config only. Default: layers too.
func WithoutLayers() AppendOption {
	return func(o *appendOptions) { o.withoutLayers = true }
}

// WithAnnotations sets annotations on the image's descriptor in the index.
// Default: none.
func WithAnnotations(annotations map[string]string) AppendOption {
	return func(o *appendOptions) { o.annotations = annotations }
}

// AppendImage writes img into the layout and adds it to the index.
func (l Path) AppendImage(img v1.Image, ops ...AppendOption) error {
	var o appendOptions
	for _, op := range ops {
		op(&o)
	}
	if !o.withoutLayers {
		if err := l.Path.AppendImage(img, ggcr.WithAnnotations(o.annotations)); err != nil {
			return fmt.Errorf("appending image to layout %s: %w", l.Path, err)
		}
		return nil
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("getting config digest: %w", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if err := l.WriteBlob(cfgName, nopCloser(rawCfg)); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	d, err := partial.Descriptor(img)
	if err != nil {
		return fmt.Errorf("describing image: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	if err := l.WriteBlob(d.Digest, nopCloser(raw)); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	d.Annotations = o.annotations
	if err := l.AppendDescriptor(*d); err != nil {
		return fmt.Errorf("appending image to layout %s: %w", l.Path, err)
	}
	return nil
}

// Write writes ii as the layout at path.
func Write(path string, ii v1.ImageIndex) (Path, error) {
	p, err := ggcr.Write(path, ii)
	if err != nil {
		return Path{}, fmt.Errorf("writing layout %s: %w", path, err)
	}
	return Path{Path: p}, nil
}

// FromPath opens the layout at path.
func FromPath(path string) (Path, error) {
	if _, err := openIndex(path); err != nil {
		return Path{}, err
	}
	return Path{Path: ggcr.Path(path)}, nil
}
