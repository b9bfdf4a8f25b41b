package fakes

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
)

// refNameAnnotation is the annotation AnnotateRefName sets on save.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Image is an in-memory imgutil.Image. Its methods are safe for concurrent
// use.
type Image struct {
	// mu guards every field below.
	mu sync.Mutex

	name         string
	topLayerSha  string
	identifier   imgutil.Identifier
	labels       map[string]string
	env          map[string]string
	cmd          []string
	entrypoint   []string
	workingDir   string
	os           string
	osVersion    string
	architecture string
	variant      string
	createdAt    time.Time
	history      []v1.History
	manifestSize int64
	refName      string
	base         string
	deleted      bool

	// addedLayers are the paths of added layers, in order; layerPaths maps
	// every readable layer (added or reused) by diffID to its file.
	addedLayers []string
	layerPaths  map[string]string
	// previousLayers are the previous image's layers, by diffID.
	previousLayers map[string]string
	reusedLayers   []string

	savedNames       map[string]bool
	savedAnnotations map[string]string
	// saveDirs are the temp dirs saves copied layers into (Cleanup removes).
	saveDirs []string
}

var _ imgutil.Image = &Image{}

// NewImage returns an image named name whose TopLayer is topLayerSha and
// whose Identifier is identifier: no labels, an empty environment, command
// ["initialCMD"], linux/amd64, created now.
func NewImage(name, topLayerSha string, identifier imgutil.Identifier) *Image {
	return &Image{
		name: name, topLayerSha: topLayerSha, identifier: identifier,
		labels: map[string]string{}, env: map[string]string{}, cmd: []string{"initialCMD"},
		os: "linux", architecture: "amd64", createdAt: time.Now(),
		layerPaths: map[string]string{}, previousLayers: map[string]string{}, savedNames: map[string]bool{},
	}
}

func (i *Image) lock() func() {
	i.mu.Lock()
	return i.mu.Unlock
}

// ensure makes the maps of an Image made without NewImage usable.
func (i *Image) ensure() {
	if i.labels == nil {
		i.labels = map[string]string{}
	}
	if i.env == nil {
		i.env = map[string]string{}
	}
	if i.layerPaths == nil {
		i.layerPaths = map[string]string{}
	}
	if i.previousLayers == nil {
		i.previousLayers = map[string]string{}
	}
	if i.savedNames == nil {
		i.savedNames = map[string]bool{}
	}
}

// Name returns the image's name.
func (i *Image) Name() string { defer i.lock()(); return i.name }

// Rename changes the image's name.
func (i *Image) Rename(name string) { defer i.lock()(); i.name = name }

// Kind is "" for a fake.
func (i *Image) Kind() string { return "" }

// Found is true until Delete.
func (i *Image) Found() bool { defer i.lock()(); return !i.deleted }

// Valid is true until Delete.
func (i *Image) Valid() bool { defer i.lock()(); return !i.deleted }

// Delete makes Found and Valid false.
func (i *Image) Delete() error { defer i.lock()(); i.deleted = true; return nil }

// Identifier returns the identifier given to NewImage or SetIdentifier.
func (i *Image) Identifier() (imgutil.Identifier, error) { defer i.lock()(); return i.identifier, nil }

// SetIdentifier sets what Identifier returns.
func (i *Image) SetIdentifier(identifier imgutil.Identifier) {
	defer i.lock()()
	i.identifier = identifier
}

// Digest is the zero hash.
func (i *Image) Digest() (v1.Hash, error) { return v1.Hash{}, nil }

// MediaType is "".
func (i *Image) MediaType() (types.MediaType, error) { return "", nil }

// UnderlyingImage is nil: a fake has no go-containerregistry image.
func (i *Image) UnderlyingImage() v1.Image { return nil }

// ManifestSize returns what SetManifestSize set.
func (i *Image) ManifestSize() (int64, error) { defer i.lock()(); return i.manifestSize, nil }

// SetManifestSize sets what ManifestSize returns.
func (i *Image) SetManifestSize(size int64) { defer i.lock()(); i.manifestSize = size }

// Annotations is nil: annotations are not kept.
func (i *Image) Annotations() (map[string]string, error) { return nil, nil }

// SetAnnotations is accepted and ignored.
func (i *Image) SetAnnotations(_ map[string]string) error { return nil }

// AnnotateRefName records refName: saves then annotate with it.
func (i *Image) AnnotateRefName(refName string) error {
	defer i.lock()()
	i.refName = refName
	return nil
}

// GetAnnotateRefName returns what AnnotateRefName recorded.
func (i *Image) GetAnnotateRefName() (string, error) { defer i.lock()(); return i.refName, nil }

// Label returns the label key, or "".
func (i *Image) Label(key string) (string, error) { defer i.lock()(); return i.labels[key], nil }

// Labels returns a copy of the labels.
func (i *Image) Labels() (map[string]string, error) {
	defer i.lock()()
	if i.labels == nil {
		return map[string]string{}, nil
	}
	return maps.Clone(i.labels), nil
}

// SetLabel sets the label k.
func (i *Image) SetLabel(k string, v string) error {
	defer i.lock()()
	i.ensure()
	i.labels[k] = v
	return nil
}

// RemoveLabel removes the label key.
func (i *Image) RemoveLabel(key string) error { defer i.lock()(); delete(i.labels, key); return nil }

// Env returns the environment variable k, or "".
func (i *Image) Env(k string) (string, error) { defer i.lock()(); return i.env[k], nil }

// SetEnv sets the environment variable k.
func (i *Image) SetEnv(k string, v string) error {
	defer i.lock()()
	i.ensure()
	i.env[k] = v
	return nil
}

// Cmd returns the command.
func (i *Image) Cmd() ([]string, error) { defer i.lock()(); return slices.Clone(i.cmd), nil }

// SetCmd sets the command.
func (i *Image) SetCmd(v ...string) error { defer i.lock()(); i.cmd = slices.Clone(v); return nil }

// Entrypoint returns the entrypoint.
func (i *Image) Entrypoint() ([]string, error) {
	defer i.lock()()
	return slices.Clone(i.entrypoint), nil
}

// SetEntrypoint sets the entrypoint.
func (i *Image) SetEntrypoint(v ...string) error {
	defer i.lock()()
	i.entrypoint = slices.Clone(v)
	return nil
}

// WorkingDir returns the working directory.
func (i *Image) WorkingDir() (string, error) { defer i.lock()(); return i.workingDir, nil }

// SetWorkingDir sets the working directory.
func (i *Image) SetWorkingDir(dir string) error { defer i.lock()(); i.workingDir = dir; return nil }

// OS returns the OS.
func (i *Image) OS() (string, error) { defer i.lock()(); return i.os, nil }

// SetOS sets the OS.
func (i *Image) SetOS(o string) error { defer i.lock()(); i.os = o; return nil }

// OSVersion returns the OS version.
func (i *Image) OSVersion() (string, error) { defer i.lock()(); return i.osVersion, nil }

// SetOSVersion sets the OS version.
func (i *Image) SetOSVersion(v string) error { defer i.lock()(); i.osVersion = v; return nil }

// OSFeatures is nil: features are not kept.
func (i *Image) OSFeatures() ([]string, error) { return nil, nil }

// SetOSFeatures is accepted and ignored.
func (i *Image) SetOSFeatures(_ []string) error { return nil }

// Features is nil: features are not kept.
func (i *Image) Features() ([]string, error) { return nil, nil }

// SetFeatures is accepted and ignored.
func (i *Image) SetFeatures(_ []string) error { return nil }

// Architecture returns the architecture.
func (i *Image) Architecture() (string, error) { defer i.lock()(); return i.architecture, nil }

// SetArchitecture sets the architecture.
func (i *Image) SetArchitecture(a string) error { defer i.lock()(); i.architecture = a; return nil }

// Variant returns the architecture variant.
func (i *Image) Variant() (string, error) { defer i.lock()(); return i.variant, nil }

// SetVariant sets the architecture variant.
func (i *Image) SetVariant(a string) error { defer i.lock()(); i.variant = a; return nil }

// CreatedAt returns the created time.
func (i *Image) CreatedAt() (time.Time, error) { defer i.lock()(); return i.createdAt, nil }

// SetCreatedAt sets the created time.
func (i *Image) SetCreatedAt(t time.Time) error { defer i.lock()(); i.createdAt = t; return nil }

// History returns the history: one entry per added layer unless set.
func (i *Image) History() ([]v1.History, error) {
	defer i.lock()()
	return slices.Clone(i.history), nil
}

// SetHistory replaces the history.
func (i *Image) SetHistory(history []v1.History) error {
	defer i.lock()()
	i.history = slices.Clone(history)
	return nil
}

// Rebase records newBase's name as Base.
func (i *Image) Rebase(_ string, newBase imgutil.Image) error {
	defer i.lock()()
	i.base = newBase.Name()
	return nil
}

// Base is the name of the image the last Rebase was onto.
func (i *Image) Base() string { defer i.lock()(); return i.base }

// SaveFile is not supported by a fake.
func (i *Image) SaveFile() (string, error) { return "", errors.New("not yet implemented") }
