package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

// IDIdentifier identifies an image in the daemon by its image ID, without
// the "sha256:" prefix.
type IDIdentifier struct {
	ImageID string
}

// String returns the image ID.
func (i IDIdentifier) String() string { return i.ImageID }

// Image is an image in a Docker daemon.
type Image struct {
	*imgutil.CNBImageCore

	store *Store
	// ownStore is true when NewImage made the store: Close closes it.
	ownStore bool

	// mu guards repoName and lastID.
	mu       sync.Mutex
	repoName string
	// lastID is the ID of the image saved last, else of the base image the
	// image was opened from ("" for an image from scratch never saved).
	lastID string
	// savedConfig is the config digest of the image saved last.
	savedConfig v1.Hash
}

var (
	_ imgutil.ContextImage = (*Image)(nil)
	_ v1.Image             = (*Image)(nil)
)

// NewImage returns an image named repoName in the daemon dockerClient talks
// to. With FromBaseImage it starts from a daemon image; with
// WithPreviousImage, ReuseLayer takes layers of another. Layers read from
// the daemon are held until Close (on Linux as unlinked files: nothing is
// left on disk even without Close).
func NewImage(repoName string, dockerClient DockerClient, ops ...imgutil.ImageOption) (*Image, error) {
	return NewImageContext(context.Background(), repoName, dockerClient, ops...)
}

// NewImageContext is NewImage with a context for the daemon calls it makes.
func NewImageContext(ctx context.Context, repoName string, dockerClient DockerClient, ops ...imgutil.ImageOption) (*Image, error) {
	var o imgutil.ImageOptions
	for _, op := range ops {
		op(&o)
	}
	store := NewStoreWithPlatform(dockerClient, o.Platform)
	store.SetProgress(o.Progress)
	img, err := newImage(ctx, store, repoName, o)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	img.ownStore = true
	return img, nil
}

// NewImageInStore is NewImage with a Store shared by several images: layers
// read from the daemon for one are reused by the others, and the Store's
// Close (not the images') removes them. WithProgress sets the Store's
// progress function (Store.SetProgress), which all its images share.
func NewImageInStore(ctx context.Context, store *Store, repoName string, ops ...imgutil.ImageOption) (*Image, error) {
	var o imgutil.ImageOptions
	for _, op := range ops {
		op(&o)
	}
	if o.Progress != nil {
		store.SetProgress(o.Progress)
	}
	return newImage(ctx, store, repoName, o)
}

func newImage(ctx context.Context, store *Store, repoName string, o imgutil.ImageOptions) (*Image, error) {
	if err := o.RefuseOtherBackends("local"); err != nil {
		return nil, err
	}
	if _, err := name.ParseReference(repoName, name.WeakValidation); err != nil {
		return nil, fmt.Errorf("image name %q: %w: %w", repoName, imgutil.ErrInvalidArgument, err)
	}
	// The base and the previous image are asked for one after the other:
	// the caller's client may serve one request at a time.
	var base *daemonImage
	if o.BaseImage == nil && o.BaseImageRepoName != "" {
		var err error
		if base, err = openOptional(ctx, store, o.BaseImageRepoName, o.PreserveHistory, "base"); err != nil {
			return nil, err
		}
		if base != nil {
			o.BaseImage = base
		}
	}
	if o.PreviousImage == nil && o.PreviousImageRepoName != "" {
		prev, err := openOptional(ctx, store, o.PreviousImageRepoName, o.PreserveHistory, "previous")
		if err != nil {
			return nil, err
		}
		if prev != nil {
			o.PreviousImage = prev
		}
	}
	if o.BaseImage == nil && (o.Platform.OS == "" || o.Platform.Architecture == "") {
		// An image from scratch gets the daemon's platform.
		d, err := store.daemon(ctx)
		if err != nil {
			return nil, err
		}
		if o.Platform.OS == "" {
			o.Platform.OS = d.os
		}
		if o.Platform.Architecture == "" {
			o.Platform.Architecture = d.arch
		}
	}
	if o.MediaTypes == imgutil.MissingTypes {
		o.MediaTypes = imgutil.DockerTypes
	}
	core, err := imgutil.NewCNBImage(o)
	if err != nil {
		return nil, err
	}
	img := &Image{CNBImageCore: core, store: store, repoName: repoName}
	if base != nil {
		img.lastID = base.id
	}
	return img, nil
}

// openOptional opens the daemon image name; a missing one is nil, no error
// (the existing library's behaviour for a missing base or previous image).
func openOptional(ctx context.Context, store *Store, name string, history bool, role string) (*daemonImage, error) {
	img, err := store.open(ctx, name, history)
	if errors.Is(err, imgutil.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s image: %w", role, err)
	}
	return img, nil
}

// Close removes the layers read from the daemon for this image, unless the
// image shares a Store (NewImageInStore). The image must not be used after.
func (i *Image) Close() error {
	if !i.ownStore {
		return nil
	}
	return i.store.Close()
}

// Kind returns "local".
func (i *Image) Kind() string { return "local" }

// Name returns the name the image is saved under.
func (i *Image) Name() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.repoName
}

// Rename changes the name the image is saved under.
func (i *Image) Rename(name string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.repoName = name
}

// Found reports whether the image exists: the base image it was opened
// from existed then (the daemon is not asked again), or it was saved since.
// Callers check an image's existence by opening it as its own base
// (NewImage(name, cli, FromBaseImage(name))), as with the existing library.
// FoundE asks the daemon by name now.
func (i *Image) Found() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lastID != ""
}

// FoundE reports whether the daemon has an image under the image's name
// now, and an error when the daemon could not be asked.
func (i *Image) FoundE(ctx context.Context) (bool, error) {
	return i.store.ContainsE(ctx, i.Name())
}

// Valid reports whether the image exists (see Found).
func (i *Image) Valid() bool { return i.Found() }

// ValidE is FoundE: an image a daemon holds is whole.
func (i *Image) ValidE(ctx context.Context) (bool, error) { return i.FoundE(ctx) }

// Identifier returns the ID of the image saved last or, before a save, of
// the base image it was opened from, as the existing library does (the
// lifecycle records the run image by it before saving). The daemon is not
// asked: the image under the image's name may be another (the previous
// build). An image from scratch never saved has an empty ID.
func (i *Image) Identifier() (imgutil.Identifier, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return IDIdentifier{ImageID: strings.TrimPrefix(i.lastID, "sha256:")}, nil
}

// Delete removes the image by the ID it had when opened (or saved last),
// with all its tags; an image that does not exist (any more) is no error.
func (i *Image) Delete() error {
	i.mu.Lock()
	id := i.lastID
	i.mu.Unlock()
	if id == "" {
		return nil
	}
	if err := i.store.Delete(id); err != nil && !errors.Is(err, imgutil.ErrNotFound) {
		return err
	}
	i.mu.Lock()
	if i.lastID == id {
		i.lastID = ""
	}
	i.mu.Unlock()
	return nil
}

// SetOS sets the image's OS, which must be the daemon's.
func (i *Image) SetOS(osVal string) error {
	d, err := i.store.daemon(context.Background())
	if err != nil {
		return err
	}
	if osVal != d.os {
		// The existing library's words, which callers match.
		return fmt.Errorf("invalid os: must match the daemon: %q (not %q): %w", d.os, osVal, imgutil.ErrInvalidArgument)
	}
	return i.CNBImageCore.SetOS(osVal)
}

// Save saves the image under its name and additionalNames.
func (i *Image) Save(additionalNames ...string) error {
	return i.SaveAs(i.Name(), additionalNames...)
}

// SaveAs saves the image under name and additionalNames; names that failed
// are listed in an imgutil.SaveError.
func (i *Image) SaveAs(name string, additionalNames ...string) error {
	return i.SaveAsContext(context.Background(), name, additionalNames...)
}

// SaveAsContext is SaveAs with a context.
func (i *Image) SaveAsContext(ctx context.Context, name string, additionalNames ...string) error {
	id, cfg, err := i.store.save(ctx, i.CNBImageCore, name, additionalNames...)
	if id != "" {
		i.mu.Lock()
		i.lastID, i.savedConfig = id, cfg
		i.mu.Unlock()
	}
	return err
}

// SaveFile writes the image as a `docker load`-able tar tagged with its
// name and returns the path.
func (i *Image) SaveFile() (string, error) {
	return i.SaveFileContext(context.Background())
}

// SaveFileContext is SaveFile with a context: layers still to be read from
// the daemon are read under it, and no partial file is left if it ends.
func (i *Image) SaveFileContext(ctx context.Context) (string, error) {
	return i.store.saveFile(ctx, i, i.Name())
}

// GetLayer returns the layer diffID of the image (its base's or previous
// image's, or one added) as a plain tar. A daemon layer not held yet is
// read from the daemon, exporting only as much of its image as it must:
// on daemons that build a whole archive before sending it, only the
// layers up to the one wanted (see the README).
func (i *Image) GetLayer(diffID string) (io.ReadCloser, error) {
	return i.GetLayerContext(context.Background(), diffID)
}

// GetLayerContext is GetLayer with a context for reading the layer from
// the daemon (one ImageSave stream of its image) when it is not held yet.
func (i *Image) GetLayerContext(ctx context.Context, diffID string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := v1.NewHash(diffID)
	if err != nil {
		return nil, fmt.Errorf("parsing diff ID %q: %w: %w", diffID, imgutil.ErrInvalidArgument, err)
	}
	l, err := i.Layer(h)
	if err != nil {
		return nil, err
	}
	if err := i.store.fetchLayers(ctx, []v1.Layer{l}, true); err != nil {
		return nil, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", diffID, err)
	}
	return layer.WithContext(ctx, rc), nil
}
