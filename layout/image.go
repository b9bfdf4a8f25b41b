package layout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/verified"
)

// Image is an image saved to an OCI layout directory: its name is the path
// of that directory.
type Image struct {
	*imgutil.CNBImageCore

	path           string
	withoutLayers  bool
	preserveDigest bool
	base           v1.Image
	progress       func(imgutil.Progress)
	// records are the layout blobs found to match their digests.
	records *verified.Records
}

var (
	_ imgutil.ContextImage = (*Image)(nil)
	_ v1.Image             = (*Image)(nil)
)

// NewImage returns an image to be saved in the layout at path. With
// FromBaseImagePath it starts from the image in another layout; with
// WithPreviousImage, ReuseLayer takes layers from one.
func NewImage(path string, ops ...imgutil.ImageOption) (*Image, error) {
	var o imgutil.ImageOptions
	for _, op := range ops {
		op(&o)
	}
	if path == "" {
		return nil, fmt.Errorf("layout path is empty: %w", imgutil.ErrInvalidArgument)
	}
	if err := o.RefuseOtherBackends("layout"); err != nil {
		return nil, err
	}
	// Blobs found to match their digests, for this image's reads, writes
	// and exports.
	records := verified.FromEnv()
	if o.BaseImage == nil && o.BaseImageRepoName != "" {
		base, _, err := readImage(o.BaseImageRepoName, o.Platform, records)
		if err != nil && !errors.Is(err, errNoLayout) {
			return nil, fmt.Errorf("reading base image: %w", err)
		}
		o.BaseImage = base
	}
	if o.PreviousImage == nil && o.PreviousImageRepoName != "" {
		prev, _, err := readImage(o.PreviousImageRepoName, o.Platform, records)
		if err != nil && !errors.Is(err, errNoLayout) {
			return nil, fmt.Errorf("reading previous image: %w", err)
		}
		o.PreviousImage = prev
	}
	core, err := imgutil.NewCNBImage(o)
	if err != nil {
		return nil, err
	}
	return &Image{CNBImageCore: core, path: path, withoutLayers: o.WithoutLayers, preserveDigest: o.PreserveDigest, base: o.BaseImage, progress: o.Progress, records: records}, nil
}

// Kind returns "layout".
func (i *Image) Kind() string { return "layout" }

// Name returns the layout path the image is saved to.
func (i *Image) Name() string { return i.path }

// Rename changes the layout path the image is saved to.
func (i *Image) Rename(name string) { i.path = name }

// Found reports whether the layout at the image's path holds an image.
func (i *Image) Found() bool {
	found, _ := i.FoundE(context.Background())
	return found
}

// FoundE reports whether the layout at the image's path holds an image; an
// unreadable layout is an error, not "missing".
func (i *Image) FoundE(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, _, err := readImage(i.path, imgutil.Platform{}, i.records)
	if errors.Is(err, imgutil.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Valid reports whether the layout at the image's path holds an image whose
// blobs are all present.
func (i *Image) Valid() bool {
	ok, _ := i.ValidE(context.Background())
	return ok
}

// ValidE reports whether the layout at the image's path holds an image
// whose blobs are all present; a layout that cannot be read (other than
// missing) is an error.
func (i *Image) ValidE(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	img, _, err := readImage(i.path, imgutil.Platform{}, i.records)
	if errors.Is(err, imgutil.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	layers, err := img.Layers()
	if err != nil {
		return false, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return false, err
		}
		if _, err := os.Stat(filepath.Join(i.path, "blobs", d.Algorithm, d.Hex)); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

// Delete removes the layout directory of the image.
func (i *Image) Delete() error {
	if err := os.RemoveAll(i.path); err != nil {
		return fmt.Errorf("deleting layout %s: %w", i.path, err)
	}
	return nil
}

// Identifier returns the layout path and manifest digest of the image.
func (i *Image) Identifier() (imgutil.Identifier, error) {
	d, err := i.Digest()
	if err != nil {
		return nil, err
	}
	return Identifier{Path: i.path, Digest: d.String()}, nil
}

// Save saves the image in the layout at its path and at each of
// additionalNames (other layout paths).
func (i *Image) Save(additionalNames ...string) error {
	return i.SaveAs(i.path, additionalNames...)
}

// SaveAs saves the image in the layout at name and at each of
// additionalNames. Names that failed are listed in an imgutil.SaveError.
func (i *Image) SaveAs(name string, additionalNames ...string) error {
	return i.SaveAsContext(context.Background(), name, additionalNames...)
}

// SaveAsContext is SaveAs that stops once ctx is done; a layout being
// written then is left as it was (see writeLayout).
func (i *Image) SaveAsContext(ctx context.Context, name string, additionalNames ...string) error {
	img, err := i.toWrite()
	if err != nil {
		return imgutil.SaveError{Errors: []imgutil.SaveDiagnostic{{ImageName: name, Cause: err}}}
	}
	refName, _ := i.GetAnnotateRefName()
	var diags []imgutil.SaveDiagnostic
	for _, n := range append([]string{name}, additionalNames...) {
		if _, err := writeLayout(ctx, n, img, i.withoutLayers, ImageRefAnnotation(refName), i.records); err != nil {
			diags = append(diags, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
	}
	if len(diags) > 0 {
		return imgutil.SaveError{Errors: diags}
	}
	return nil
}

// toWrite is the image to save: the base as it is when PreserveDigest was
// asked for and nothing was edited, else the edited image.
func (i *Image) toWrite() (toWrite, error) {
	if i.preserveDigest && i.base != nil && !i.Edited() {
		return baseToWrite(i.base)
	}
	b, err := built.ForSave(i.CNBImageCore)
	if err != nil {
		return toWrite{}, err
	}
	return toWrite{
		layers: b.Layers, rawConfig: b.RawConfig, mediaType: b.ManifestType(),
		rawManifest: b.RawManifest,
	}, nil
}

func baseToWrite(base v1.Image) (toWrite, error) {
	layers, err := base.Layers()
	if err != nil {
		return toWrite{}, fmt.Errorf("reading base layers: %w", err)
	}
	raw, err := base.RawConfigFile()
	if err != nil {
		return toWrite{}, fmt.Errorf("reading base config: %w", err)
	}
	mt, err := base.MediaType()
	if err != nil {
		return toWrite{}, fmt.Errorf("reading base media type: %w", err)
	}
	if mt == "" {
		// A manifest without a media type is an OCI one.
		mt = types.OCIManifestSchema1
	}
	return toWrite{layers: layers, rawConfig: raw, mediaType: mt, rawManifest: base.RawManifest}, nil
}

// SaveFile writes the image as a `docker load`-able tar in the temp
// directory and returns its path. The image is tagged with its ref-name
// annotation when that is a valid reference. No partial file is left on
// failure.
func (i *Image) SaveFile() (string, error) {
	return i.SaveFileContext(context.Background())
}

// SaveFileContext is SaveFile stopped (leaving no file) once ctx is done.
func (i *Image) SaveFileContext(ctx context.Context) (string, error) {
	b, err := built.ForSave(i.CNBImageCore)
	if err != nil {
		return "", err
	}
	var tags []string
	if ref, _ := i.GetAnnotateRefName(); ref != "" {
		if tag, err := archive.Tag(ref); err == nil {
			tags = append(tags, tag)
		}
	}
	return archive.WriteImageFile(ctx, b, tags, "imgutil-layout-*.tar", archive.Reporter(i.progress, "export"))
}
