package containerd_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/testhelpers"
)

// testRunsInK8sNamespace: an image saved into k8s.io on a base of that
// namespace runs at once with ctr (unpacked by the save), and sees the new
// layer's file.
func testRunsInK8sNamespace(t *testing.T, d daemon) {
	const ns = "k8s.io"
	name, _, word := saveRunnable(t, d.client, ns)
	ctr, err := exec.LookPath("ctr")
	if err != nil {
		t.Skip("no ctr here")
	}
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
		t.Skip("no moby daemon with the containerd image store (scripts/dockerd.sh all, then scripts/containerd.sh)")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker command here")
	}
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
