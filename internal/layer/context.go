package layer

import (
	"context"
	"io"
)

// WithContext returns rc whose reads fail with ctx's error once ctx is
// done (a layer handed to a caller who gave a context).
func WithContext(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	return ctxReader{ctx: ctx, ReadCloser: rc}
}

type ctxReader struct {
	ctx context.Context
	io.ReadCloser
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.ReadCloser.Read(p)
}
