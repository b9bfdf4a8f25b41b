package imgutil

import (
	"context"
	"io"

	"github.com/imgbridge/imgutil/internal/layer"
)

// ContextImage is an Image whose calls that reach a daemon, a registry or
// the disk come in a variant with a context: once it is done they stop
// with its error and leave nothing half-written (no name moved, no partial
// file). Every backend's *Image implements it (local, remote, layout and
// layout/sparse); the methods without a context use
// context.Background().
type ContextImage interface {
	Image
	// FoundE reports whether the image exists; a store that cannot be
	// asked is an error, not "missing".
	FoundE(ctx context.Context) (bool, error)
	// ValidE reports whether the image exists with all its content.
	ValidE(ctx context.Context) (bool, error)
	SaveAsContext(ctx context.Context, name string, additionalNames ...string) error
	SaveFileContext(ctx context.Context) (string, error)
	GetLayerContext(ctx context.Context, diffID string) (io.ReadCloser, error)
}

// GetLayerContext is GetLayer whose reads fail with ctx's error once ctx
// is done.
func (i *CNBImageCore) GetLayerContext(ctx context.Context, diffID string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := i.GetLayer(diffID)
	if err != nil {
		return nil, err
	}
	return layer.WithContext(ctx, rc), nil
}
