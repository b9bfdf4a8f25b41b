package imgutil

import (
	"maps"
)

// refNameKey is the annotation that names an image in an OCI layout.
const refNameKey = "org.opencontainers.image.ref.name"

var errInvalid = ErrInvalidArgument

// Annotations returns a copy of the manifest annotations.
func (i *CNBImageCore) Annotations() (map[string]string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return maps.Clone(i.annotations), nil
}

// SetAnnotations adds annotations to the manifest.
func (i *CNBImageCore) SetAnnotations(annotations map[string]string) error {
	return i.edit(func() error {
		maps.Copy(i.annotations, annotations)
		return nil
	})
}

// AnnotateRefName sets the manifest's org.opencontainers.image.ref.name.
func (i *CNBImageCore) AnnotateRefName(refName string) error {
	return i.SetAnnotations(map[string]string{refNameKey: refName})
}

// GetAnnotateRefName returns the manifest's org.opencontainers.image.ref.name.
func (i *CNBImageCore) GetAnnotateRefName() (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.annotations[refNameKey], nil
}
