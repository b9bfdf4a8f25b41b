package local_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/local"
)

// traceEnv names the environment variable that makes the lifecycle
// benchmark print each daemon call it makes, with its duration (where the
// time of an export goes).
const traceEnv = "IMGUTIL_TRACE_CALLS"

// traced returns c, or c printing each call and its duration when
// IMGUTIL_TRACE_CALLS is set.
func traced(c *countingClient) local.DockerClient {
	if os.Getenv(traceEnv) == "" {
		return c
	}
	return traceClient{c}
}

type traceClient struct{ *countingClient }

func logCall(name string, start time.Time) {
	fmt.Fprintf(os.Stderr, "call %-32s %v\n", name, time.Since(start).Round(100*time.Microsecond))
}

func short(s string) string { return s[:min(24, len(s))] }

func (c traceClient) ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	defer logCall("inspect "+short(image), time.Now())
	return c.countingClient.ImageInspect(ctx, image, opts...)
}

func (c traceClient) ImageHistory(ctx context.Context, image string, opts ...client.ImageHistoryOption) (client.ImageHistoryResult, error) {
	defer logCall("history", time.Now())
	return c.countingClient.ImageHistory(ctx, image, opts...)
}

func (c traceClient) ImageRemove(ctx context.Context, image string, o client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	defer logCall("remove "+short(image), time.Now())
	return c.countingClient.ImageRemove(ctx, image, o)
}

func (c traceClient) ImageTag(ctx context.Context, o client.ImageTagOptions) (client.ImageTagResult, error) {
	defer logCall("tag "+short(o.Target), time.Now())
	return c.countingClient.ImageTag(ctx, o)
}

func (c traceClient) ImageList(ctx context.Context, o client.ImageListOptions) (client.ImageListResult, error) {
	defer logCall("list", time.Now())
	return c.countingClient.ImageList(ctx, o)
}

// tracedBody logs its call when closed (a load or a save lasts until then).
type tracedBody struct {
	io.ReadCloser
	name  string
	start time.Time
}

func (b tracedBody) Close() error {
	logCall(b.name, b.start)
	return b.ReadCloser.Close()
}

func (c traceClient) ImageLoad(ctx context.Context, in io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	start := time.Now()
	r, err := c.countingClient.ImageLoad(ctx, in, opts...)
	if err != nil {
		return r, err
	}
	return tracedBody{r, "load", start}, nil
}

func (c traceClient) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	start := time.Now()
	r, err := c.countingClient.ImageSave(ctx, images, opts...)
	if err != nil {
		return r, err
	}
	return tracedBody{r, "save " + short(images[0]), start}, nil
}
