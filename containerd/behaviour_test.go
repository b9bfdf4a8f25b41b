package containerd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	ilayer "github.com/imgbridge/imgutil/internal/layer"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/opencontainers/go-digest"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

// testRunsInK8sNamespace: an image saved into k8s.io on a base of that
// namespace runs at once with ctr (unpacked by the save), and sees the new
// layer's file.
func testRunsInK8sNamespace(t *testing.T, d daemon) {
	const ns = "k8s.io"
	name, _, word := saveRunnable(t, d.client, ns)
	ctr, err := exec.LookPath("ctr")
	must(t, err)
	id := "imgutil-" + strings.ToLower(rand.Text()[:8])
	out, err := exec.Command(ctr, "--address", d.socket, "-n", ns, "run", "--rm", name, id).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr run %s: %v\n%s", name, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != word {
		t.Errorf("the container printed %q, want %q", got, word)
	}
}

// saveRunnable saves into ns an image on a busybox base imported there,
// whose command prints a random word from a new layer; it returns its
// name, its identifier and the word.
func saveRunnable(t *testing.T, c *client.Client, ns string) (string, imgutil.Identifier, string) {
	t.Helper()
	base := freshName(t, c, ns)
	put(t, c, ns, base, testhelpers.BusyboxImage(t, imgutil.OCITypes))
	name := freshName(t, c, ns)
	img, err := containerd.NewImage(name, c, containerd.WithNamespace(ns), imgutil.FromBaseImage(base))
	must(t, err)
	word := strings.ToLower(rand.Text()[:10])
	p, _ := testhelpers.LayerFile(t, map[string]string{"hello.txt": word})
	must(t, img.AddLayer(p))
	must(t, img.SetCmd("/bin/cat", "/hello.txt"))
	must(t, img.Save())
	id, err := img.Identifier()
	must(t, err)
	return name, id, word
}

// contentDigests lists the blobs of the content store.
func contentDigests(t *testing.T, c *client.Client, ns string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	must(t, c.ContentStore().Walk(nsCtx(ns), func(i content.Info) error {
		out[i.Digest.String()] = true
		return nil
	}))
	return out
}

// testWritesOnlyWhatTheStoreLacks: a rebuild on a base and a previous image
// of the namespace writes three blobs, the new layer, config and manifest;
// the reused and base layers stay where they are.
func testWritesOnlyWhatTheStoreLacks(t *testing.T, c *client.Client) {
	base := freshName(t, c, testNamespace)
	put(t, c, testNamespace, base, testhelpers.BusyboxImage(t, imgutil.DockerTypes))
	prev := freshName(t, c, testNamespace)
	first := newImage(t, c, prev, imgutil.FromBaseImage(base))
	var ids []string
	for _, n := range []string{"one", "two"} {
		p, id := testhelpers.LayerFile(t, map[string]string{"app/" + n: n + strings.Repeat("x", 1<<16)})
		must(t, first.AddLayerWithDiffID(p, id))
		ids = append(ids, id)
	}
	must(t, first.Save())

	before := contentDigests(t, c, testNamespace)
	name := freshName(t, c, testNamespace)
	img := newImage(t, c, name, imgutil.FromBaseImage(base), imgutil.WithPreviousImage(prev))
	for _, id := range ids {
		must(t, img.ReuseLayer(id))
	}
	p, newID := testhelpers.LayerFile(t, map[string]string{"app/three": "three"})
	must(t, img.AddLayerWithDiffID(p, newID))
	must(t, img.SetLabel("build", "2"))
	must(t, img.Save())
	var added []string
	for d := range contentDigests(t, c, testNamespace) {
		if !before[d] {
			added = append(added, d)
		}
	}
	if len(added) != 3 {
		t.Errorf("the rebuild added %d blobs %v, want 3 (new layer, config, manifest)", len(added), added)
	}
	got := read(t, c, testNamespace, name)
	testhelpers.CheckImage(t, got)
	if ids := testhelpers.DiffIDs(t, got); ids[len(ids)-1] != newID {
		t.Errorf("top layer %s, want %s", ids[len(ids)-1], newID)
	}
}

// testInterruptedSaveKeepsTheName: a save that fails half-way (a layer file
// that vanished, a cancelled context) leaves the name on the image it had.
func testInterruptedSaveKeepsTheName(t *testing.T, c *client.Client) {
	name := freshName(t, c, testNamespace)
	img := newImage(t, c, name)
	p, _ := testhelpers.LayerFile(t, map[string]string{"v": "1"})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	saved, err := img.Identifier()
	must(t, err)

	again := newImage(t, c, name)
	dir := t.TempDir()
	q, _ := testhelpers.RandomLayerFile(t, 1<<20)
	moved := filepath.Join(dir, "layer.tar")
	must(t, os.Rename(q, moved))
	must(t, again.AddLayer(moved))
	must(t, os.Remove(moved))
	if err := again.Save(); err == nil {
		t.Fatal("a save whose layer file is gone succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, _ := testhelpers.RandomLayerFile(t, 1<<20)
	must(t, again.AddLayer(r))
	if err := again.SaveAsContext(ctx, name); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled save: %v, want context.Canceled", err)
	}
	now, err := newImage(t, c, name).Identifier()
	must(t, err)
	if now.String() != saved.String() {
		t.Errorf("after failed saves the name is on %s, want %s", now, saved)
	}
}

// TestMobyNamespace: an image saved into the "moby" namespace of the
// containerd of a Docker daemon with the containerd image store is that
// daemon's: it lists it, and runs it.
func TestMobyNamespace(t *testing.T) {
	sock, host, ok := strings.Cut(os.Getenv("IMGUTIL_MOBY_CONTAINERD"), "=")
	if !ok {
		if os.Getenv("IMGUTIL_REQUIRE_DAEMON") != "" {
			t.Fatal("IMGUTIL_MOBY_CONTAINERD is not set (scripts/dockerd.sh all, then scripts/containerd.sh)")
		}
		t.Skip("no moby daemon with the containerd image store (scripts/dockerd.sh all, then scripts/containerd.sh)")
	}
	docker, err := exec.LookPath("docker")
	must(t, err)
	c, err := client.New(sock)
	must(t, err)
	defer c.Close()
	name, id, word := saveRunnable(t, c, "moby")

	out, err := exec.Command(docker, "-H", host, "image", "inspect", "--format", "{{.Id}}", name).CombinedOutput()
	if err != nil {
		t.Fatalf("docker image inspect %s: %v\n%s", name, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != id.String() {
		t.Errorf("docker sees %s as %s, want %s", name, got, id)
	}
	out, err = exec.Command(docker, "-H", host, "run", "--rm", "--network", "none", name).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v\n%s", name, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != word {
		t.Errorf("the container printed %q, want %q", got, word)
	}
}

// testPlatformOfAnIndex: a base that is an index of two platforms (as a
// multi-platform pull leaves it) gives the manifest of the platform asked
// for (imgutil.WithDefaultPlatform), else this host's.
func testPlatformOfAnIndex(t *testing.T, c *client.Client) {
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: testhelpers.PlatformImage(t, "amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: testhelpers.PlatformImage(t, "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	dir := t.TempDir()
	_, err := layout.Write(dir, idx)
	must(t, err)
	var buf bytes.Buffer
	must(t, ilayer.WriteDir(&buf, dir, "", time.Time{}))
	base := freshName(t, c, testNamespace)
	_, err = c.Import(nsCtx(testNamespace), &buf, client.WithIndexName(base), client.WithAllPlatforms(true))
	must(t, err)
	for _, arch := range []string{"arm64", "amd64"} {
		img := newImage(t, c, freshName(t, c, testNamespace), imgutil.FromBaseImage(base),
			imgutil.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: arch}))
		if got, _ := img.Architecture(); got != arch {
			t.Errorf("on an index, with platform %s: architecture %q", arch, got)
		}
	}
	if got, _ := newImage(t, c, freshName(t, c, testNamespace), imgutil.FromBaseImage(base)).Architecture(); got != runtime.GOARCH {
		t.Errorf("on an index, with no platform: architecture %q, want this host's %s", got, runtime.GOARCH)
	}
}

// testIntoAnotherNamespace: the same image saved into a second namespace
// of the same containerd (its blobs already in the shared store, not in
// that namespace) is whole there.
func testIntoAnotherNamespace(t *testing.T, c *client.Client) {
	name := freshName(t, c, testNamespace)
	img := newImage(t, c, name)
	p, _ := testhelpers.LayerFile(t, map[string]string{"x": "x"})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	const other = "imgutil-test-other"
	twinName := freshName(t, c, other)
	twin, err := containerd.NewImage(twinName, c, containerd.WithNamespace(other),
		func(o *imgutil.ImageOptions) { o.BaseImage, o.PreserveDigest = img.UnderlyingImage(), true })
	must(t, err)
	must(t, twin.Save())
	a, err := img.Identifier()
	must(t, err)
	b, err := twin.Identifier()
	must(t, err)
	if a.String() != b.String() {
		t.Errorf("the copy into %s is %s, not %s", other, b, a)
	}
	if ok, err := twin.ValidE(context.Background()); !ok || err != nil {
		t.Errorf("the copy into %s is not whole: %v, %v", other, ok, err)
	}
}

// testAbsoluteNames: a layer as build tools write it (absolute names, a
// hard link and a symbolic link by absolute path) goes into the store
// compressed (by default: gzip; zstd on request) or byte for byte (its blob
// is the file: digest = diffID), reads back byte for byte, and unpacks so
// that a container sees its files through both links.
func testAbsoluteNames(t *testing.T, d daemon) {
	for name, c := range map[string]containerd.Compression{"default": "", "zstd": containerd.Zstd, "uncompressed": containerd.Uncompressed} {
		t.Run(name, func(t *testing.T) { testAbsoluteNamesIn(t, d, c) })
	}
}

func testAbsoluteNamesIn(t *testing.T, d daemon, compression containerd.Compression) {
	const ns = "k8s.io"
	word := strings.ToLower(rand.Text()[:10])
	p, diffID := testhelpers.BuildToolLayerFile(t, word)
	fi, err := os.Stat(p)
	must(t, err)

	base := freshName(t, d.client, ns)
	put(t, d.client, ns, base, testhelpers.BusyboxImage(t, imgutil.OCITypes))
	name := freshName(t, d.client, ns)
	// The base is imported as a Docker image (ctr import): OCI types, so
	// that zstd layers may be.
	ops := []imgutil.ImageOption{containerd.WithNamespace(ns), imgutil.FromBaseImage(base), imgutil.WithMediaTypes(imgutil.OCITypes)}
	if compression != "" {
		ops = append(ops, containerd.WithCompression(compression))
	}
	img, err := containerd.NewImage(name, d.client, ops...)
	must(t, err)
	must(t, img.AddLayerWithDiffID(p, diffID))
	must(t, img.SetCmd("/bin/cat", "/layers/bp/hard", "/layers/bp/soft"))
	must(t, img.Save())

	m := storedManifest(t, d.client, ns, name)
	top := m.Layers[len(m.Layers)-1]
	want := map[containerd.Compression]string{
		"":                      "application/vnd.oci.image.layer.v1.tar+gzip",
		containerd.Zstd:         "application/vnd.oci.image.layer.v1.tar+zstd",
		containerd.Uncompressed: "application/vnd.oci.image.layer.v1.tar",
	}[compression]
	if string(top.MediaType) != want {
		t.Errorf("the new layer is stored as %s, want %s", top.MediaType, want)
	}
	info, err := d.client.ContentStore().Info(nsCtx(ns), digest.Digest(top.Digest.String()))
	must(t, err)
	if info.Size != top.Size {
		t.Errorf("the layer's blob is %d bytes, its descriptor says %d", info.Size, top.Size)
	}
	if compression == containerd.Uncompressed && (top.Digest.String() != diffID || info.Size != fi.Size()) {
		t.Errorf("uncompressed, the layer's blob is %s (%d bytes), the file %s (%d bytes)", top.Digest, info.Size, diffID, fi.Size())
	}
	reopened, err := containerd.NewImage(name, d.client, containerd.WithNamespace(ns), imgutil.FromBaseImage(name))
	must(t, err)
	testhelpers.CheckGetLayer(t, reopened.GetLayer, diffID)

	ctr, err := exec.LookPath("ctr")
	must(t, err)
	id := "imgutil-" + strings.ToLower(rand.Text()[:8])
	out, err := exec.Command(ctr, "--address", d.socket, "-n", ns, "run", "--rm", name, id).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr run %s: %v\n%s", name, err, out)
	}
	if got := string(out); got != word+word {
		t.Errorf("through the hard and the symbolic link the container read %q, want %q", got, word+word)
	}
}

// storedManifest reads the manifest the record name points at.
func storedManifest(t *testing.T, c *client.Client, ns, name string) *v1.Manifest {
	t.Helper()
	rec, err := c.ImageService().Get(nsCtx(ns), name)
	must(t, err)
	raw, err := content.ReadBlob(nsCtx(ns), c.ContentStore(), rec.Target)
	must(t, err)
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	must(t, err)
	return m
}
