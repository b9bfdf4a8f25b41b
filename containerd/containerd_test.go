package containerd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	gname "github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/internal/imagetest"
)

var _ imagetest.CoreMethods = (*containerd.Image)(nil)

// testNamespace is where the tests save their images.
const testNamespace = "imgutil-test"

// daemon is one containerd the tests run against.
type daemon struct {
	name, socket string
	client       *client.Client
}

// daemons are the containerds IMGUTIL_CONTAINERD_HOSTS lists
// (scripts/containerd.sh: name=socket,...). None: the tests skip, unless
// IMGUTIL_REQUIRE_DAEMON is set.
func daemons(t *testing.T) []daemon {
	t.Helper()
	var out []daemon
	for _, kv := range strings.Split(os.Getenv("IMGUTIL_CONTAINERD_HOSTS"), ",") {
		name, sock, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		c, err := client.New(sock)
		if err != nil {
			t.Fatalf("containerd %s at %s: %v", name, sock, err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, daemon{name: name, socket: sock, client: c})
	}
	if len(out) == 0 {
		if os.Getenv("IMGUTIL_REQUIRE_DAEMON") != "" {
			t.Fatal("IMGUTIL_CONTAINERD_HOSTS lists no containerd (run scripts/containerd.sh)")
		}
		t.Skip("no containerd: IMGUTIL_CONTAINERD_HOSTS is empty (scripts/containerd.sh starts them)")
	}
	return out
}

func forEach(t *testing.T, f func(t *testing.T, d daemon)) {
	for _, d := range daemons(t) {
		t.Run(d.name, func(t *testing.T) {
			v, err := d.client.Version(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("containerd %s", v.Version)
			f(t, d)
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func nsCtx(ns string) context.Context {
	return namespaces.WithNamespace(context.Background(), ns)
}

// freshName is a name no test used, its record removed when the test ends.
func freshName(t *testing.T, c *client.Client, ns string) string {
	name := "example.com/imgutil-test/" + strings.ToLower(rand.Text()[:12]) + ":latest"
	t.Cleanup(func() {
		_ = c.ImageService().Delete(nsCtx(ns), name, images.SynchronousDelete())
	})
	return name
}

func newImage(t *testing.T, c *client.Client, name string, ops ...imgutil.ImageOption) *containerd.Image {
	t.Helper()
	img, err := containerd.NewImage(name, c, append([]imgutil.ImageOption{containerd.WithNamespace(testNamespace)}, ops...)...)
	if err != nil {
		t.Fatalf("NewImage(%s): %v", name, err)
	}
	return img
}

// put imports img into the namespace under name with containerd's own
// importer (a docker archive, as `ctr images import` reads).
func put(t testing.TB, c *client.Client, ns, name string, img v1.Image) {
	t.Helper()
	tag, err := gname.NewTag(name)
	must(t, err)
	var buf bytes.Buffer
	must(t, tarball.Write(tag, img, &buf))
	_, err = c.Import(nsCtx(ns), &buf, client.WithImageRefTranslator(func(string) string { return name }))
	must(t, err)
}

// read exports name with containerd's own exporter and reads it back.
func read(t testing.TB, c *client.Client, ns, name string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	must(t, c.Export(nsCtx(ns), &buf, archive.WithImage(c.ImageService(), name), archive.WithSkipNonDistributableBlobs()))
	dir := t.TempDir()
	untar(t, &buf, dir)
	idx, err := ggcrlayout.ImageIndexFromPath(dir)
	must(t, err)
	m, err := idx.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 1 {
		t.Fatalf("export of %s holds %d manifests, want 1", name, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	must(t, err)
	return img
}

func untar(t testing.TB, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		must(t, err)
		p := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			must(t, os.MkdirAll(p, 0o755))
		case tar.TypeReg:
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			b, err := io.ReadAll(tr)
			must(t, err)
			must(t, os.WriteFile(p, b, 0o644))
		}
	}
}

func harness(c *client.Client) imagetest.Harness {
	return imagetest.Harness{
		NewImage: func(t *testing.T, name string, ops ...imgutil.ImageOption) imgutil.Image {
			return newImage(t, c, name, ops...)
		},
		FreshName: func(t *testing.T) string { return freshName(t, c, testNamespace) },
		Store: func(t *testing.T, img v1.Image) string {
			name := freshName(t, c, testNamespace)
			put(t, c, testNamespace, name, img)
			return name
		},
		Read:               func(t *testing.T, name string) v1.Image { return read(t, c, testNamespace, name) },
		BaseMediaTypes:     imgutil.DockerTypes,
		KeepsMediaTypes:    true,
		UncompressedLayers: true,
	}
}

func TestContainerd(t *testing.T) {
	forEach(t, func(t *testing.T, d daemon) {
		t.Run("Suite", func(t *testing.T) { imagetest.Run(t, harness(d.client)) })
		t.Run("RunsInK8sNamespace", func(t *testing.T) { testRunsInK8sNamespace(t, d) })
		t.Run("WritesOnlyWhatTheStoreLacks", func(t *testing.T) { testWritesOnlyWhatTheStoreLacks(t, d.client) })
		t.Run("InterruptedSaveKeepsTheName", func(t *testing.T) { testInterruptedSaveKeepsTheName(t, d.client) })
		t.Run("PlatformOfAnIndex", func(t *testing.T) { testPlatformOfAnIndex(t, d.client) })
		t.Run("IntoAnotherNamespace", func(t *testing.T) { testIntoAnotherNamespace(t, d.client) })
		t.Run("AbsoluteNames", func(t *testing.T) { testAbsoluteNames(t, d) })
		t.Run("SnapshotterFromNamespace", func(t *testing.T) { testSnapshotterFromNamespace(t, d) })
		t.Run("RebuildCompressesNothingTwice", func(t *testing.T) { testRebuildCompressesNothingTwice(t, d) })
		t.Run("StoredFormReused", func(t *testing.T) { testStoredFormReused(t, d) })
		t.Run("BaseRemovedBeforeSave", func(t *testing.T) { testBaseRemovedBeforeSave(t, d) })
		t.Run("PushedByCtr", func(t *testing.T) { testPushedByCtr(t, d) })
		t.Run("KilledSavesLeasesSwept", func(t *testing.T) { testKilledSavesLeasesSwept(t, d) })
		t.Run("SlowerThanItsLease", func(t *testing.T) { testSlowerThanItsLease(t, d) })
		t.Run("SaveIndex", func(t *testing.T) { testSaveIndex(t, d) })
		t.Run("OpenIndex", func(t *testing.T) { testOpenIndex(t, d) })
		t.Run("LeasesOfOtherPidNamespaces", func(t *testing.T) { testLeasesOfOtherPidNamespaces(t, d) })
	})
}
