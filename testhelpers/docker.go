package testhelpers

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/jsonstream"
)

// RequireDaemonEnv names the environment variable that turns "no daemon
// answers" from a skip into a failure (CI sets it).
const RequireDaemonEnv = "IMGUTIL_REQUIRE_DAEMON"

// DockerClient returns a client of the daemon that DOCKER_HOST (or the
// default socket) names. When none answers the test is skipped, or fails
// when IMGUTIL_REQUIRE_DAEMON is set.
func DockerClient(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = cli.Ping(ctx, client.PingOptions{})
		if err == nil {
			t.Cleanup(func() { cli.Close() })
			return cli
		}
		cli.Close()
	}
	if os.Getenv(RequireDaemonEnv) != "" {
		t.Fatalf("no Docker daemon answers (%v) and %s is set", err, RequireDaemonEnv)
	}
	t.Skipf("skipped: no Docker daemon answers (%v); scripts/dockerd.sh starts one", err)
	return nil
}

// DockerLoad loads the archive at path into the daemon and returns the
// images the daemon says it loaded (names or IDs).
func DockerLoad(t testing.TB, cli client.APIClient, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	mustDo(t, err)
	defer f.Close()
	res, err := cli.ImageLoad(context.Background(), f, client.ImageLoadWithQuiet(true))
	mustDo(t, err)
	defer res.Close()
	lines, err := jsonstream.Read(res)
	if err != nil {
		t.Fatalf("docker load of %s: %v (%v)", path, err, lines)
	}
	return jsonstream.LoadedImages(lines)
}
