package local

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/moby/moby/client"
)

// serialClient makes every call on the caller's client one at a time: a
// client may serve a single request at once (the lifecycle hands out one
// that fails a second concurrent request), so no call starts while another
// is under way, including while the body a call returned (an ImageSave
// stream, an ImageLoad answer) is still open. A call waiting for its turn
// gives up when its context ends.
//
// Nothing in this package may make a call while holding a body open on the
// same goroutine: that call would wait for ever (until its context ends).
type serialClient struct {
	c DockerClient
	// turn holds one token while a call (or a body it returned) is open.
	turn chan struct{}
}

var _ DockerClient = (*serialClient)(nil)

func newSerialClient(c DockerClient) *serialClient {
	return &serialClient{c: c, turn: make(chan struct{}, 1)}
}

func (s *serialClient) acquire(ctx context.Context) error {
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *serialClient) release() { <-s.turn }

// call runs f in its turn.
func call[T any](ctx context.Context, s *serialClient, f func() (T, error)) (T, error) {
	if err := s.acquire(ctx); err != nil {
		var zero T
		return zero, err
	}
	defer s.release()
	return f()
}

// bodyReleaser releases the turn when the body is closed, once. Closing
// reads the body to its end first: a body closed early leaves its bytes on
// the connection, and a client that has only one (the lifecycle's, whose
// connection cannot be closed) would read them as the next answer. Only a
// cancelled context cuts a body short (the request is aborted then).
type bodyReleaser struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *bodyReleaser) Close() error {
	_, _ = io.Copy(io.Discard, b.ReadCloser)
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// ClientVersion is the caller's client's, when it tells one.
func (s *serialClient) ClientVersion() string {
	if c, ok := s.c.(interface{ ClientVersion() string }); ok {
		return c.ClientVersion()
	}
	return ""
}

func (s *serialClient) ImageHistory(ctx context.Context, image string, opts ...client.ImageHistoryOption) (client.ImageHistoryResult, error) {
	return call(ctx, s, func() (client.ImageHistoryResult, error) { return s.c.ImageHistory(ctx, image, opts...) })
}

func (s *serialClient) ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return call(ctx, s, func() (client.ImageInspectResult, error) { return s.c.ImageInspect(ctx, image, opts...) })
}

func (s *serialClient) ImageRemove(ctx context.Context, image string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	return call(ctx, s, func() (client.ImageRemoveResult, error) { return s.c.ImageRemove(ctx, image, options) })
}

func (s *serialClient) ImageTag(ctx context.Context, options client.ImageTagOptions) (client.ImageTagResult, error) {
	return call(ctx, s, func() (client.ImageTagResult, error) { return s.c.ImageTag(ctx, options) })
}

func (s *serialClient) Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error) {
	return call(ctx, s, func() (client.SystemInfoResult, error) { return s.c.Info(ctx, options) })
}

func (s *serialClient) ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return call(ctx, s, func() (client.ServerVersionResult, error) { return s.c.ServerVersion(ctx, options) })
}

// ImageLoad keeps the turn until the daemon's answer is closed.
func (s *serialClient) ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	return s.held(ctx, func() (io.ReadCloser, error) { return s.c.ImageLoad(ctx, input, opts...) })
}

// ImageSave keeps the turn until the stream is closed.
func (s *serialClient) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	return s.held(ctx, func() (io.ReadCloser, error) { return s.c.ImageSave(ctx, images, opts...) })
}

// held runs f in its turn and keeps the turn until the body f returned is
// closed.
func (s *serialClient) held(ctx context.Context, f func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	body, err := f()
	if err != nil || body == nil {
		s.release()
		return body, err
	}
	return &bodyReleaser{ReadCloser: body, release: s.release}, nil
}

// imageList lists images when the caller's client can (see imageLister).
func (s *serialClient) imageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error) {
	l, ok := s.c.(imageLister)
	if !ok {
		return client.ImageListResult{}, errors.ErrUnsupported
	}
	return call(ctx, s, func() (client.ImageListResult, error) { return l.ImageList(ctx, options) })
}
