package testhelpers

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gname "github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/dockerhost"
	"github.com/imgbridge/imgutil/internal/jsonstream"
	"github.com/imgbridge/imgutil/internal/layer"
)

// RequireDaemonEnv names the environment variable that turns "no daemon
// answers" from a skip into a failure (CI sets it).
const RequireDaemonEnv = "IMGUTIL_REQUIRE_DAEMON"

// DockerClient returns a client of the daemon the environment names, as
// the Docker CLI finds it (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH,
// DOCKER_CONTEXT, the current context; else the default socket). When none
// answers the test is skipped, or fails when IMGUTIL_REQUIRE_DAEMON is set.
func DockerClient(t testing.TB) *client.Client {
	t.Helper()
	ep, err := dockerhost.FromEnv()
	var cli *client.Client
	if err == nil {
		cli, err = clientOf(ep)
	}
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

// DockerPut loads img into the daemon under the tag name (no library code
// involved: a go-containerregistry archive into ImageLoad) and removes it
// when the test ends.
func DockerPut(t testing.TB, cli client.APIClient, name string, img v1.Image) {
	t.Helper()
	tag, err := gname.NewTag(name)
	mustDo(t, err)
	path := filepath.Join(t.TempDir(), "put.tar")
	mustDo(t, tarball.WriteToFile(path, tag, img))
	DockerLoad(t, cli, path)
	DockerCleanup(t, cli, name)
}

// DockerCleanup removes the image name from the daemon when the test ends.
func DockerCleanup(t testing.TB, cli client.APIClient, name string) {
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), name, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
}

// DockerRead reads the image name back from the daemon with a full
// ImageSave and returns it as a v1.Image backed by files in t.TempDir: from
// the OCI layout in the archive when there is one (it keeps each blob as
// stored), else from the docker-archive manifest.json.
func DockerRead(t testing.TB, cli client.APIClient, name string) v1.Image {
	t.Helper()
	rc, err := cli.ImageSave(context.Background(), []string{name})
	mustDo(t, err)
	defer rc.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "saved.tar")
	f, err := os.Create(path)
	mustDo(t, err)
	_, err = io.Copy(f, rc)
	mustDo(t, err)
	mustDo(t, f.Close())

	tree := filepath.Join(dir, "tree")
	mustDo(t, os.Mkdir(tree, 0o755))
	f, err = os.Open(path)
	mustDo(t, err)
	defer f.Close()
	mustDo(t, layer.Extract(f, tree))
	if _, err := os.Stat(filepath.Join(tree, "index.json")); err == nil {
		return imageFromLayout(t, tree)
	}
	var tag *gname.Tag
	if t2, err := gname.NewTag(name); err == nil {
		tag = &t2
	}
	img, err := tarball.ImageFromPath(path, tag)
	if err != nil {
		// An archive saved by ID has no tag to pick the image by.
		img, err = tarball.ImageFromPath(path, nil)
	}
	mustDo(t, err)
	return img
}

// imageFromLayout returns the one image manifest of the layout at dir,
// looking into nested indexes.
func imageFromLayout(t testing.TB, dir string) v1.Image {
	t.Helper()
	idx, err := ggcrlayout.ImageIndexFromPath(dir)
	mustDo(t, err)
	for range 3 {
		m, err := idx.IndexManifest()
		mustDo(t, err)
		if len(m.Manifests) != 1 {
			t.Fatalf("layout index holds %d manifests, want 1", len(m.Manifests))
		}
		d := m.Manifests[0]
		if d.MediaType.IsImage() {
			img, err := idx.Image(d.Digest)
			mustDo(t, err)
			return img
		}
		idx, err = idx.ImageIndex(d.Digest)
		mustDo(t, err)
	}
	t.Fatal("layout nests indexes too deep")
	return nil
}

// DaemonsEnv names the environment variable listing the daemons to test
// against: name=host pairs separated by commas (scripts/dockerd.sh all
// prints it). A host is unix://, npipe://, tcp:// or ssh://, or the name of
// a Docker context (TLS material and all).
const DaemonsEnv = "IMGUTIL_DOCKER_HOSTS"

// Daemon is a Docker daemon tests run against.
type Daemon struct {
	Name   string
	Client *client.Client
}

// DockerDaemons returns every daemon IMGUTIL_DOCKER_HOSTS lists, or else
// the one DockerClient finds. A listed daemon that does not answer fails
// the test when IMGUTIL_REQUIRE_DAEMON is set and is skipped otherwise.
func DockerDaemons(t testing.TB) []Daemon {
	t.Helper()
	list := os.Getenv(DaemonsEnv)
	if list == "" {
		return []Daemon{{Name: "default", Client: DockerClient(t)}}
	}
	var out []Daemon
	for _, pair := range strings.Split(list, ",") {
		name, host, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			t.Fatalf("%s: %q is not name=host", DaemonsEnv, pair)
		}
		cli, err := clientOf(mustEndpoint(t, host))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = cli.Ping(ctx, client.PingOptions{})
			cancel()
		}
		if err != nil {
			if os.Getenv(RequireDaemonEnv) != "" {
				t.Fatalf("daemon %s at %s does not answer: %v", name, host, err)
			}
			t.Logf("skipping daemon %s at %s: %v", name, host, err)
			continue
		}
		t.Cleanup(func() { cli.Close() })
		out = append(out, Daemon{Name: name, Client: cli})
	}
	if len(out) == 0 {
		t.Skipf("skipped: no daemon of %s answers", DaemonsEnv)
	}
	return out
}

// ForEachDaemon runs f as a subtest named after each daemon of DockerDaemons.
func ForEachDaemon(t *testing.T, f func(t *testing.T, cli *client.Client)) {
	t.Helper()
	for _, d := range DockerDaemons(t) {
		t.Run(d.Name, func(t *testing.T) { f(t, d.Client) })
	}
}
