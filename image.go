package imgutil

import (
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is an editable container image that lives in a store (a daemon, a
// registry or a layout). Edits stay in memory until Save, SaveAs or SaveFile.
type Image interface {
	WithEditableManifest
	WithEditableConfig
	WithEditableLayers
	// Found reports whether the image exists in its store. It is false, with
	// no error, when the image does not exist.
	Found() bool
	// Identifier identifies the saved image in its store: local.IDIdentifier,
	// remote.DigestIdentifier or layout.Identifier.
	Identifier() (Identifier, error)
	// Kind names the backend: "local", "remote" or "layout".
	Kind() string
	// Name is the name the image is saved under.
	Name() string
	// UnderlyingImage returns the edited image as a go-containerregistry image.
	UnderlyingImage() v1.Image
	// Valid reports whether the image exists and is complete in its store.
	Valid() bool
	// Delete removes the image from its store.
	Delete() error
	// Rename changes the name the image is saved under.
	Rename(name string)
	// Save saves the image under its name and additionalNames.
	Save(additionalNames ...string) error
	// SaveAs saves the image under name and additionalNames.
	SaveAs(name string, additionalNames ...string) error
	// SaveFile writes the image as a `docker load`-able tar and returns its path.
	SaveFile() (string, error)
}

// WithEditableManifest is the part of Image that reads and edits the manifest.
type WithEditableManifest interface {
	Annotations() (map[string]string, error)
	Digest() (v1.Hash, error)
	GetAnnotateRefName() (string, error)
	ManifestSize() (int64, error)
	MediaType() (types.MediaType, error)
	AnnotateRefName(refName string) error
	SetAnnotations(map[string]string) error
}

// WithEditableConfig is the part of Image that reads and edits the config.
type WithEditableConfig interface {
	Architecture() (string, error)
	CreatedAt() (time.Time, error)
	Entrypoint() ([]string, error)
	Env(key string) (string, error)
	History() ([]v1.History, error)
	Label(string) (string, error)
	Labels() (map[string]string, error)
	OS() (string, error)
	OSFeatures() ([]string, error)
	OSVersion() (string, error)
	RemoveLabel(string) error
	Variant() (string, error)
	WorkingDir() (string, error)
	SetArchitecture(string) error
	SetCmd(...string) error
	SetEntrypoint(...string) error
	SetEnv(string, string) error
	SetHistory([]v1.History) error
	SetLabel(string, string) error
	SetOS(string) error
	SetOSFeatures([]string) error
	SetOSVersion(string) error
	SetVariant(string) error
	SetWorkingDir(string) error
}

// WithEditableLayers is the part of Image that reads and edits layers.
type WithEditableLayers interface {
	GetLayer(diffID string) (io.ReadCloser, error)
	TopLayer() (string, error)
	AddLayer(path string) error
	AddLayerWithDiffID(path, diffID string) error
	AddLayerWithDiffIDAndHistory(path, diffID string, history v1.History) error
	AddOrReuseLayerWithHistory(path, diffID string, history v1.History) error
	Rebase(string, Image) error
	ReuseLayer(diffID string) error
	ReuseLayerWithHistory(diffID string, history v1.History) error
}

// Identifier identifies a saved image in its store; callers type-switch on
// the backend's concrete type.
type Identifier fmt.Stringer

// Platform selects or describes the platform of an image.
type Platform struct {
	Architecture string
	OS           string
	Variant      string
	OSVersion    string
}
