package local

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/client"
)

// daemonInfo is what the Store learns of the daemon once.
type daemonInfo struct {
	os         string
	arch       string
	apiVersion string
	// containerdStore is true when the daemon keeps images in containerd's
	// content store (driver-type io.containerd.snapshotter.v1).
	containerdStore bool
}

// platformAPI is the API version from which image calls take a platform.
const platformAPI = "1.49"

// supports reports whether the daemon's API version is at least v.
func (d daemonInfo) supports(v string) bool { return versionAtLeast(d.apiVersion, v) }

func versionAtLeast(have, want string) bool {
	hp, wp := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < len(wp); i++ {
		var h, w int
		if i < len(hp) {
			h, _ = strconv.Atoi(hp[i])
		}
		w, _ = strconv.Atoi(wp[i])
		if h != w {
			return h > w
		}
	}
	return true
}

// infoOnce asks the daemon for its facts once; a failure is remembered.
type infoOnce struct {
	mu   sync.Mutex
	done bool
	info daemonInfo
	err  error
}

func (o *infoOnce) get(ctx context.Context, c DockerClient) (daemonInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return o.info, o.err
	}
	o.info, o.err = fetchInfo(ctx, c)
	// A cancelled context says nothing of the daemon: ask again next time.
	o.done = ctx.Err() == nil
	return o.info, o.err
}

func fetchInfo(ctx context.Context, c DockerClient) (daemonInfo, error) {
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return daemonInfo{}, daemonError("asking the daemon its version", err)
	}
	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return daemonInfo{}, daemonError("asking the daemon for its info", err)
	}
	d := daemonInfo{os: info.Info.OSType, arch: v.Arch, apiVersion: v.APIVersion}
	if d.os == "" {
		d.os = v.Os
	}
	for _, kv := range info.Info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			d.containerdStore = true
		}
	}
	return d, nil
}

// daemonError wraps an error of the daemon with what was being done; a
// daemon that cannot be reached matches ErrDaemonUnreachable.
func daemonError(doing string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%s: %w: %w", doing, ErrDaemonUnreachable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}
