package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// testLayoutSaveFileKeepsTheID: a layout image's SaveFile (its blobs as
// stored, an OCI layout and a docker manifest in one archive) loads into
// every daemon as the same image: the config digest on classic stores and
// Podman, the manifest digest (the layout's own) on the containerd store.
func testLayoutSaveFileKeepsTheID(t *testing.T, cli *client.Client) {
	name := freshName(t, cli)
	dir := filepath.Join(t.TempDir(), "app")
	img, err := layout.NewImage(dir)
	must(t, err)
	for _, content := range []string{"one", "two"} {
		p, _ := testhelpers.LayerFile(t, map[string]string{"f": content})
		must(t, img.AddLayer(p))
	}
	must(t, img.SetLabel("from", "layout"))
	must(t, img.AnnotateRefName(name))
	must(t, img.Save())
	saved, err := layout.NewImage(dir, layout.FromBaseImagePath(dir))
	must(t, err)
	digest, err := saved.Digest()
	must(t, err)
	config, err := saved.ConfigName()
	must(t, err)

	file, err := saved.SaveFile()
	must(t, err)
	t.Cleanup(func() { os.Remove(file) })
	testhelpers.DockerLoad(t, cli, file)
	res, err := cli.ImageInspect(context.Background(), name)
	must(t, err)
	want := config.String()
	if containerdStore(t, cli) {
		want = digest.String()
	}
	if res.ID != want {
		t.Fatalf("the layout image loads as %s, want %s (config %s, manifest %s)", res.ID, want, config, digest)
	}
	if res.Config.Labels["from"] != "layout" {
		t.Fatalf("loaded image labels %v", res.Config.Labels)
	}
}

// testGetLayerReadsTheLowerLayers: a layer low in a big image is read from
// a short-lived image of the layers up to it (the daemon then exports only
// those), hashes to its diffID, and the short-lived image is gone after.
// On the containerd store that needs the image's stored manifest, read out
// of the stream first when not known.
func testGetLayerReadsTheLowerLayers(t *testing.T, cli *client.Client) {
	// A small image, probed all the same (real ones are worth it from
	// tens of MiB): in Stores set so.
	probing := func(c local.DockerClient) *local.Store {
		s := local.NewStore(c)
		local.SetProbeMinSize(s, 0)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	name := freshName(t, cli)
	img := empty.Image
	var diffIDs []string
	for range 8 {
		p, id := testhelpers.RandomLayerFile(t, 64<<10)
		l, err := tarball.LayerFromFile(p)
		must(t, err)
		img, err = mutate.AppendLayers(img, l)
		must(t, err)
		diffIDs = append(diffIDs, id)
	}
	testhelpers.DockerPut(t, cli, name, img)
	ours := filepath.Join(os.TempDir(), fmt.Sprintf("imgutil-local-*-%d-*", os.Getpid()))
	before, _ := filepath.Glob(ours)
	for round := range 2 {
		counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, cli.DaemonHost())}
		store := probing(counting)
		opened, err := local.NewImageInStore(context.Background(), store, name, local.FromBaseImage(name))
		must(t, err)
		rc, err := opened.GetLayer(diffIDs[1])
		must(t, err)
		h := sha256.New()
		_, err = io.Copy(h, rc)
		must(t, err)
		must(t, rc.Close())
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffIDs[1] {
			t.Fatalf("layer read has diffID %s, want %s", got, diffIDs[1])
		}
		must(t, opened.Close())
		must(t, store.Close())
		probed := slices.ContainsFunc(counting.saved, func(n string) bool { return strings.HasPrefix(n, "imgutil-probe/") })
		if !probed {
			t.Fatalf("round %d: the layer was read from %v, not a probe image", round, counting.saved)
		}
	}
	if after, _ := filepath.Glob(ours); len(after) > len(before) {
		t.Fatalf("layer directories left after Close: %v (before: %v)", after, before)
	}
	// Once more through a client that serves one request at a time: the
	// probe's load, save and removal never overlap.
	single := testhelpers.NewSingleConnClient(t, cli)
	opened, err := local.NewImageInStore(context.Background(), probing(single), name, local.FromBaseImage(name))
	must(t, err)
	rc, err := opened.GetLayer(diffIDs[2])
	must(t, err)
	h := sha256.New()
	_, err = io.Copy(h, rc)
	must(t, err)
	must(t, rc.Close())
	must(t, opened.Close())
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffIDs[2] {
		t.Fatalf("layer read through a single-connection client has diffID %s, want %s", got, diffIDs[2])
	}
	list, err := cli.ImageList(context.Background(), client.ImageListOptions{All: true})
	must(t, err)
	for _, im := range list.Items {
		for _, tag := range im.RepoTags {
			if strings.Contains(tag, "imgutil-probe") || strings.Contains(tag, "imgutil-staging") {
				t.Fatalf("a probe image survived: %s", tag)
			}
		}
	}
}
