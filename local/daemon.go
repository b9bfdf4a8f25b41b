package local

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/moby/client"
)

// daemonInfo is what the Store learns of the daemon once, from
// ServerVersion (Info is slow on current daemons: it is asked only when the
// storage mode cannot be told otherwise, see Store.containerdStore).
type daemonInfo struct {
	os         string
	arch       string
	apiVersion string
}

// platformAPI is the API version from which image calls take a platform.
const platformAPI = "1.49"

// once asks the daemon for something once; a failure is remembered, but a
// cancelled context says nothing of the daemon and is not.
type once[T any] struct {
	mu   sync.Mutex
	done bool
	val  T
	err  error
}

func (o *once[T]) get(ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return o.val, o.err
	}
	o.val, o.err = f(ctx)
	o.done = ctx.Err() == nil
	return o.val, o.err
}

func fetchInfo(ctx context.Context, c DockerClient) (daemonInfo, error) {
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return daemonInfo{}, daemonError("asking the daemon its version", err)
	}
	return daemonInfo{os: v.Os, arch: v.Arch, apiVersion: v.APIVersion}, nil
}

// fetchContainerdStore asks Info whether the daemon keeps images in the
// containerd image store (driver-type io.containerd.snapshotter.v1).
func fetchContainerdStore(ctx context.Context, c DockerClient) (bool, error) {
	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, daemonError("asking the daemon for its info", err)
	}
	for _, kv := range info.Info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return true, nil
		}
	}
	return false, nil
}

// daemonError wraps an error of the daemon with what was being done; a
// daemon that cannot be reached matches ErrDaemonUnreachable.
func daemonError(doing string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%s: %w: %w", doing, ErrDaemonUnreachable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}
