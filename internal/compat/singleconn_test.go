package compat_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/local"
)

// errSingleton is what the lifecycle's single-connection client answers a
// request made while another is under way.
var errSingleton = errors.New("singleton connection already in use")

// singleConnClient serves one request at a time, as the client the
// lifecycle builds on a root-owned socket: a call made while another call
// (or a body it returned) is open fails, and is counted.
type singleConnClient struct {
	c        *client.Client
	busy     atomic.Bool
	overlaps atomic.Int64
}

var _ local.DockerClient = (*singleConnClient)(nil)

func newSingleConnClient(c *client.Client) *singleConnClient { return &singleConnClient{c: c} }

func (s *singleConnClient) enter() error {
	if !s.busy.CompareAndSwap(false, true) {
		s.overlaps.Add(1)
		return errSingleton
	}
	return nil
}

func (s *singleConnClient) leave() { s.busy.Store(false) }

func single[T any](s *singleConnClient, f func() (T, error)) (T, error) {
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

func (s *singleConnClient) ClientVersion() string { return s.c.ClientVersion() }

func (s *singleConnClient) ImageHistory(ctx context.Context, image string, opts ...client.ImageHistoryOption) (client.ImageHistoryResult, error) {
	return single(s, func() (client.ImageHistoryResult, error) { return s.c.ImageHistory(ctx, image, opts...) })
}

func (s *singleConnClient) ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return single(s, func() (client.ImageInspectResult, error) { return s.c.ImageInspect(ctx, image, opts...) })
}

func (s *singleConnClient) ImageRemove(ctx context.Context, image string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	return single(s, func() (client.ImageRemoveResult, error) { return s.c.ImageRemove(ctx, image, options) })
}

func (s *singleConnClient) ImageTag(ctx context.Context, options client.ImageTagOptions) (client.ImageTagResult, error) {
	return single(s, func() (client.ImageTagResult, error) { return s.c.ImageTag(ctx, options) })
}

func (s *singleConnClient) Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error) {
	return single(s, func() (client.SystemInfoResult, error) { return s.c.Info(ctx, options) })
}

func (s *singleConnClient) ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return single(s, func() (client.ServerVersionResult, error) { return s.c.ServerVersion(ctx, options) })
}

func (s *singleConnClient) ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	res, err := s.c.ImageLoad(ctx, input, opts...)
	if err != nil {
		s.leave()
		return nil, err
	}
	return &openBody{ReadCloser: res, leave: s.leave}, nil
}

func (s *singleConnClient) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	res, err := s.c.ImageSave(ctx, images, opts...)
	if err != nil {
		s.leave()
		return nil, err
	}
	return &openBody{ReadCloser: res, leave: s.leave}, nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
