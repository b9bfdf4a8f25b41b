package imgutil

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil/internal/imgerr"
)

// ErrNotImplemented is returned by a name the contract lists whose feature
// this version does not provide yet.
var ErrNotImplemented = errors.New("not implemented")

// ErrNotFound is matched (errors.Is) by every error that means an image, a
// layer or a manifest does not exist.
var ErrNotFound = imgerr.ErrNotFound

// ErrInvalidArgument is matched (errors.Is) by errors caused by bad input:
// an invalid reference, a corrupt layer file, a wrong diffID, an unsafe tar.
var ErrInvalidArgument = imgerr.ErrInvalidArgument

// ErrUnauthorized is matched (errors.Is) when a registry refused the
// credentials (or their absence): HTTP 401 or 403. It is never reported as
// "not found". containerd's errdefs.IsUnauthorized recognises it too.
var ErrUnauthorized error = unauthorized{}

type unauthorized struct{}

func (unauthorized) Error() string { return "unauthorized" }
func (unauthorized) Unauthorized() {}

// ErrManifestUndefined is returned when an index holds no manifest for a digest.
var ErrManifestUndefined = fmt.Errorf("encountered unexpected error while parsing image: manifest or index manifest is nil: %w", ErrNotFound)

// ErrUnknownMediaType is returned for a media type this library cannot handle.
var ErrUnknownMediaType = func(format types.MediaType) error {
	return fmt.Errorf("unsupported media type encountered in image: '%s': %w", format, ErrInvalidArgument)
}

// SaveDiagnostic tells why saving the image under one name failed.
type SaveDiagnostic struct {
	ImageName string
	Cause     error
}

// SaveError is returned by Save and SaveAs when one or more names failed; the
// names that are not listed were saved.
type SaveError struct {
	Errors []SaveDiagnostic
}

func (e SaveError) Error() string {
	var msgs []string
	for _, d := range e.Errors {
		msgs = append(msgs, fmt.Sprintf("[%s: %v]", d.ImageName, d.Cause))
	}
	return fmt.Sprintf("failed to write image to the following tags: %s", strings.Join(msgs, ","))
}

// Unwrap returns the cause of every failed name, so that errors.Is and
// errors.As see through a SaveError.
func (e SaveError) Unwrap() []error {
	errs := make([]error, 0, len(e.Errors))
	for _, d := range e.Errors {
		errs = append(errs, d.Cause)
	}
	return errs
}

// ErrLayerNotFound is returned when a layer with DiffID is not where it was
// looked for (the previous image, the image itself). It matches ErrNotFound
// and containerd's errdefs.IsNotFound.
type ErrLayerNotFound = imgerr.ErrLayerNotFound

// ErrUnsafeTar is matched (errors.Is) by errors about a tar entry that could
// write outside its root: an absolute path, a ".." escape, an escaping link.
// It also matches ErrInvalidArgument.
var ErrUnsafeTar = imgerr.ErrUnsafeTar

// ErrDiffIDMismatch is matched (errors.Is) when a layer's content does not
// have the diffID the caller gave. It also matches ErrInvalidArgument.
var ErrDiffIDMismatch = imgerr.ErrDiffIDMismatch

// ErrTagTakenOver is matched by a save whose image was loaded but whose
// name another save (of the same name, at the same time) moved to a
// different image before the answer; the error names both images.
var ErrTagTakenOver = imgerr.ErrTagTakenOver
