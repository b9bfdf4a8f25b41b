package local_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/layout"
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
