package testhelpers

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/local"
)

// ErrSingletonInUse is what a SingleConnClient answers a request made while
// another is under way, as the client the lifecycle builds on a root-owned
// socket does.
var ErrSingletonInUse = errors.New("singleton connection already in use")

// SingleConnClient serves one request at a time: a call made while another
// call, or a body it returned (an ImageSave stream, an ImageLoad answer),
// is open fails with ErrSingletonInUse and fails the test. Tests hand it
// to the library to prove it never overlaps calls on a caller's client.
type SingleConnClient struct {
	c        local.DockerClient
	tb       testing.TB
	busy     atomic.Bool
	overlaps atomic.Int64
}

var _ local.DockerClient = (*SingleConnClient)(nil)

// NewSingleConnClient wraps c; an overlapping call fails tb. A
// *client.Client is replaced by a NewLifecycleClient of the same daemon: one connection for every call, so that a response left
// unread fails the test too. Wrappers of other kinds are used as they are
// (build them on a NewLifecycleClient).
func NewSingleConnClient(tb testing.TB, c local.DockerClient) *SingleConnClient {
	if cli, ok := c.(*client.Client); ok {
		c = NewLifecycleClient(tb, cli.DaemonHost())
	}
	return &SingleConnClient{c: c, tb: tb}
}

// Overlaps is how many calls came while another was open.
func (s *SingleConnClient) Overlaps() int64 { return s.overlaps.Load() }

func (s *SingleConnClient) enter() error {
	if !s.busy.CompareAndSwap(false, true) {
		s.overlaps.Add(1)
		s.tb.Errorf("a call was made on a single-connection client while another was open")
		return ErrSingletonInUse
	}
	return nil
}

func (s *SingleConnClient) leave() { s.busy.Store(false) }

func one[T any](s *SingleConnClient, f func() (T, error)) (T, error) {
	if err := s.enter(); err != nil {
		var zero T
		return zero, err
	}
	defer s.leave()
	return f()
}

// openBody keeps the connection busy until the body is closed.
type openBody struct {
	io.ReadCloser
	once  sync.Once
	leave func()
}

func (b *openBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.leave)
	return err
}

func (s *SingleConnClient) withBody(f func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	rc, err := f()
	if err != nil || rc == nil {
		s.leave()
		return rc, err
	}
	return &openBody{ReadCloser: rc, leave: s.leave}, nil
}

// ClientVersion and DaemonHost are the wrapped client's, when it tells them.
func (s *SingleConnClient) ClientVersion() string {
	if c, ok := s.c.(interface{ ClientVersion() string }); ok {
		return c.ClientVersion()
	}
	return ""
}

// DaemonHost is the wrapped client's host, when it tells it.
func (s *SingleConnClient) DaemonHost() string {
	if c, ok := s.c.(interface{ DaemonHost() string }); ok {
		return c.DaemonHost()
	}
	return ""
}

// ImageHistory is the wrapped client's, one at a time.
func (s *SingleConnClient) ImageHistory(ctx context.Context, image string, opts ...client.ImageHistoryOption) (client.ImageHistoryResult, error) {
	return one(s, func() (client.ImageHistoryResult, error) { return s.c.ImageHistory(ctx, image, opts...) })
}

// ImageInspect is the wrapped client's, one at a time.
func (s *SingleConnClient) ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return one(s, func() (client.ImageInspectResult, error) { return s.c.ImageInspect(ctx, image, opts...) })
}

// ImageRemove is the wrapped client's, one at a time.
func (s *SingleConnClient) ImageRemove(ctx context.Context, image string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	return one(s, func() (client.ImageRemoveResult, error) { return s.c.ImageRemove(ctx, image, options) })
}

// ImageTag is the wrapped client's, one at a time.
func (s *SingleConnClient) ImageTag(ctx context.Context, options client.ImageTagOptions) (client.ImageTagResult, error) {
	return one(s, func() (client.ImageTagResult, error) { return s.c.ImageTag(ctx, options) })
}

// Info is the wrapped client's, one at a time.
func (s *SingleConnClient) Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error) {
	return one(s, func() (client.SystemInfoResult, error) { return s.c.Info(ctx, options) })
}

// ServerVersion is the wrapped client's, one at a time.
func (s *SingleConnClient) ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return one(s, func() (client.ServerVersionResult, error) { return s.c.ServerVersion(ctx, options) })
}

// ImageLoad is the wrapped client's; the connection stays busy until the
// answer is closed.
func (s *SingleConnClient) ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	return s.withBody(func() (io.ReadCloser, error) { return s.c.ImageLoad(ctx, input, opts...) })
}

// ImageSave is the wrapped client's; the connection stays busy until the
// stream is closed.
func (s *SingleConnClient) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	return s.withBody(func() (io.ReadCloser, error) { return s.c.ImageSave(ctx, images, opts...) })
}

// ImageList is the wrapped client's, one at a time, when it has one (the
// library uses it, where the client offers it, to remove names killed
// processes left).
func (s *SingleConnClient) ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error) {
	l, ok := s.c.(interface {
		ImageList(context.Context, client.ImageListOptions) (client.ImageListResult, error)
	})
	if !ok {
		return client.ImageListResult{}, errors.ErrUnsupported
	}
	return one(s, func() (client.ImageListResult, error) { return l.ImageList(ctx, options) })
}
