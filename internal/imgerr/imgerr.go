// Package imgerr holds the error classes the root package exports, for the
// internal packages the root package itself builds on (they cannot import
// it). The root package re-exports each under the same name.
package imgerr

import (
	"errors"
	"fmt"
)

// The error classes carry the marker methods containerd's errdefs tests
// for, so that cerrdefs.IsNotFound and the like recognise them (and errors
// wrapping them) across modules, while errors.Is with our names works as
// with any sentinel.
type (
	notFound        struct{}
	invalidArgument struct{}
)

func (notFound) Error() string            { return "not found" }
func (notFound) NotFound()                {}
func (invalidArgument) Error() string     { return "invalid argument" }
func (invalidArgument) InvalidParameter() {}

// ErrNotFound is imgutil.ErrNotFound.
var ErrNotFound error = notFound{}

// ErrInvalidArgument is imgutil.ErrInvalidArgument.
var ErrInvalidArgument error = invalidArgument{}

// ErrUnsafeTar is imgutil.ErrUnsafeTar.
var ErrUnsafeTar = fmt.Errorf("unsafe tar entry: %w", ErrInvalidArgument)

// ErrDiffIDMismatch is imgutil.ErrDiffIDMismatch.
var ErrDiffIDMismatch = fmt.Errorf("layer diff ID mismatch: %w", ErrInvalidArgument)

// ErrLayerNotFound is returned when a layer with DiffID is not where it was
// looked for (the previous image, the image itself). It matches ErrNotFound.
type ErrLayerNotFound struct {
	DiffID string
}

func (e ErrLayerNotFound) Error() string {
	return fmt.Sprintf("failed to find layer with diff ID %q", e.DiffID)
}

// Is makes ErrLayerNotFound match ErrNotFound.
func (e ErrLayerNotFound) Is(target error) bool { return target == ErrNotFound }

// NotFound marks the error as a not-found error for libraries that test for
// that method (containerd's errdefs).
func (e ErrLayerNotFound) NotFound() {}

// ErrTagTakenOver says a save loaded its image but, before it could
// answer, another save moved the name to a different image.
var ErrTagTakenOver = errors.New("the name was taken over by another save")
