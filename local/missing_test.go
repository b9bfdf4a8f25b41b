package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// TestDeletedPreviousImage: the previous image vanishes between open and
// save; the save fails clearly and tags nothing.
func testDeletedPreviousImage(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, f.cli)
	img := newImage(t, f.cli, name, local.FromBaseImage(f.base), local.WithPreviousImage(f.previous))
	must(t, img.ReuseLayer(f.appIDs[0]))
	_, err := f.cli.ImageRemove(context.Background(), f.previous, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	must(t, err)
	err = img.Save()
	if err == nil {
		// The daemon may still hold the layer's chain through another image.
		testhelpers.CheckImage(t, testhelpers.DockerRead(t, f.cli, name))
		return
	}
	var se imgutil.SaveError
	if !errors.As(err, &se) {
		t.Fatalf("Save after the previous image was deleted = %v, want a SaveError", err)
	}
	t.Logf("save failed as expected: %v", err)
	if _, err := f.cli.ImageInspect(context.Background(), name); err == nil {
		t.Fatalf("a failed save left the tag %s", name)
	}
	assertNoStagingTags(t, f.cli)
}

func testVanishedLayerFileTagsNothing(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, f.cli)
	img := newImage(t, f.cli, name, local.FromBaseImage(f.base))
	p, _ := testhelpers.LayerFile(t, map[string]string{"gone": "gone"})
	must(t, img.AddLayer(p))
	must(t, os.Remove(p))
	if err := img.Save(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Save with a vanished layer file = %v, want os.ErrNotExist", err)
	}
	if _, err := f.cli.ImageInspect(context.Background(), name); err == nil {
		t.Fatalf("a failed save left the tag %s", name)
	}
}

func testConcurrentSavesSharingABase(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	store := local.NewStore(testhelpers.NewSingleConnClient(t, f.cli))
	t.Cleanup(func() { must(t, store.Close()) })
	names := []string{freshName(t, f.cli), freshName(t, f.cli)}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		p, _ := testhelpers.RandomLayerFile(t, 64<<10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := local.NewImageInStore(context.Background(), store, name, local.FromBaseImage(f.base), local.WithPreviousImage(f.previous))
			if err == nil {
				err = img.ReuseLayer(f.appIDs[i%2])
			}
			if err == nil {
				err = img.AddLayer(p)
			}
			if err == nil {
				err = img.Save()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, name := range names {
		must(t, errs[i])
		testhelpers.CheckImage(t, testhelpers.DockerRead(t, f.cli, name))
	}
}

func testBadInput(t *testing.T, cli *client.Client) {
	if _, err := local.NewImage("Not A Valid Name", cli); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("NewImage(invalid name) = %v, want ErrInvalidArgument", err)
	}
	img := newImage(t, cli, freshName(t, cli))
	if err := img.SetOS("plan9"); !errors.Is(err, imgutil.ErrInvalidArgument) || !strings.Contains(err.Error(), "invalid os: must match the daemon") {
		t.Errorf("SetOS(plan9) = %v, want ErrInvalidArgument saying \"invalid os: must match the daemon\"", err)
	}
	// A bad extra name fails alone, in the daemon's words callers match.
	p, _ := testhelpers.LayerFile(t, map[string]string{"f": "f"})
	must(t, img.AddLayer(p))
	err := img.Save("Not A Valid:Tag:")
	var se imgutil.SaveError
	if !errors.As(err, &se) || len(se.Errors) != 1 || !strings.Contains(se.Errors[0].Cause.Error(), "invalid reference format") {
		t.Errorf("Save with an invalid extra tag = %v, want one diagnostic saying \"invalid reference format\"", err)
	}
	dead, err := client.New(client.WithHost("unix://" + filepath.Join(t.TempDir(), "no-daemon.sock")))
	must(t, err)
	if _, err := local.NewImage("imgutil-test/x:latest", dead); !errors.Is(err, local.ErrDaemonUnreachable) {
		t.Errorf("NewImage with no daemon = %v, want ErrDaemonUnreachable", err)
	}
	if ok, err := local.NewStore(dead).ContainsE(context.Background(), "x"); ok || !errors.Is(err, local.ErrDaemonUnreachable) {
		t.Errorf("ContainsE with no daemon = %v, %v; want false and ErrDaemonUnreachable", ok, err)
	}
}

// testDeletedBase: the base vanishes between open and save. Its layers may
// live on in the previous image; the save must give a correct image or a
// clear error, and never a tag on a broken one.
func testDeletedBase(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, cli)
	img := newImage(t, cli, name, local.FromBaseImage(f.base), local.WithPreviousImage(f.previous))
	must(t, img.ReuseLayer(f.appIDs[1]))
	p, _ := testhelpers.LayerFile(t, map[string]string{"after": "base deleted"})
	must(t, img.AddLayer(p))
	_, err := cli.ImageRemove(context.Background(), f.base, client.ImageRemoveOptions{Force: true})
	must(t, err)
	if err := img.Save(); err != nil {
		var se imgutil.SaveError
		if !errors.As(err, &se) {
			t.Fatalf("Save after the base was deleted = %v, want a SaveError", err)
		}
		if _, err := cli.ImageInspect(context.Background(), name); err == nil {
			t.Fatalf("a failed save left the tag %s", name)
		}
		return
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
}

// testBaseWithMissingBlobs: on the containerd store, a base whose layer
// blob is not in the content store (loaded without it) must not give an
// image that references it: the save sends bytes or fails clearly.
func testBaseWithMissingBlobs(t *testing.T, cli *client.Client) {
	if !containerdStore(t, cli) {
		t.Skip("only the containerd store can hold an image without its blobs")
	}
	base := freshName(t, cli)
	loadWithoutLayerBlobs(t, cli, base)
	name := freshName(t, cli)
	img := newImage(t, cli, name, local.FromBaseImage(base))
	p, _ := testhelpers.LayerFile(t, map[string]string{"on": "broken base"})
	must(t, img.AddLayer(p))
	if err := img.Save(); err != nil {
		t.Logf("save failed clearly: %v", err)
		if _, err := cli.ImageInspect(context.Background(), name); err == nil {
			t.Fatalf("a failed save left the tag %s", name)
		}
		return
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
}

// loadWithoutLayerBlobs loads into the containerd store an OCI layout of a
// one-layer image whose layer blob is left out (and was never stored).
func loadWithoutLayerBlobs(t *testing.T, cli *client.Client, name string) {
	t.Helper()
	layerPath, _ := testhelpers.RandomLayerFile(t, 4<<10)
	l, err := layer.FromFile(layerPath, types.OCIUncompressedLayer, layer.Caches{})
	must(t, err)
	info := l.Info()
	cfg, err := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{info.DiffID}}})
	must(t, err)
	cfgDigest := sha256Hash(cfg)
	manifest, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: cfgDigest},
		Layers: []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Size: info.Size, Digest: info.DiffID}}})
	must(t, err)
	md := sha256Hash(manifest)
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: types.OCIManifestSchema1, Size: int64(len(manifest)), Digest: md,
		Annotations: map[string]string{"io.containerd.image.name": "docker.io/" + name},
	}}})
	must(t, err)
	entries := []archive.Entry{
		{Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{Name: "blobs/sha256/" + cfgDigest.Hex, Data: cfg},
		{Name: "blobs/sha256/" + md.Hex, Data: manifest},
		{Name: "index.json", Data: index},
	}
	for i := range entries {
		entries[i].Size = int64(len(entries[i].Data))
	}
	path, err := archive.WriteFile(context.Background(), t.TempDir(), "broken-*.tar", entries)
	must(t, err)
	testhelpers.DockerLoad(t, cli, path)
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
