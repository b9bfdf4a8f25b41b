package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

func TestMain(m *testing.M) {
	// Temp files of ours go to a directory of this run, checked at the end:
	// other processes' entries in the shared temp dir are not ours.
	tmp, err := os.MkdirTemp("", "local-tests-*")
	if err != nil {
		panic(err)
	}
	os.Setenv("TMPDIR", tmp)
	os.Setenv(local.ManifestCacheEnv, filepath.Join(tmp, "manifest-cache"))
	code := m.Run()
	left, _ := filepath.Glob(filepath.Join(tmp, "imgutil-*"))
	for _, p := range left {
		fmt.Fprintf(os.Stderr, "temp entry left behind by the tests: %s\n", p)
		code = 1
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countingClient counts what goes to the daemon: bytes of load requests
// and ImageSave calls; failSave makes ImageSave fail.
type countingClient struct {
	*client.Client
	loadBytes atomic.Int64
	readBytes atomic.Int64
	loadNanos atomic.Int64 // time spent in loads, from the request to the answer's close
	loads     atomic.Int64
	saves     atomic.Int64
	failSave  error

	// mu guards saved: the names ImageSave was asked for.
	mu    sync.Mutex
	saved []string
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingClient) ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	c.loads.Add(1)
	start := time.Now()
	res, err := c.Client.ImageLoad(ctx, countingReader{input, &c.loadBytes}, opts...)
	if err != nil {
		c.loadNanos.Add(int64(time.Since(start)))
		return res, err
	}
	return timedBody{ReadCloser: res, start: start, total: &c.loadNanos}, nil
}

// timedBody adds the time from start to its Close to total.
type timedBody struct {
	io.ReadCloser
	start time.Time
	total *atomic.Int64
}

func (b timedBody) Close() error {
	b.total.Add(int64(time.Since(b.start)))
	return b.ReadCloser.Close()
}

func (c *countingClient) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	c.saves.Add(1)
	c.mu.Lock()
	c.saved = append(c.saved, images...)
	c.mu.Unlock()
	if c.failSave != nil {
		return nil, c.failSave
	}
	rc, err := c.Client.ImageSave(ctx, images, opts...)
	if err != nil {
		return rc, err
	}
	return countingBody{ReadCloser: rc, n: &c.readBytes}, nil
}

func containerdStore(t *testing.T, cli *client.Client) bool {
	info, err := cli.Info(context.Background(), client.InfoOptions{})
	must(t, err)
	for _, kv := range info.Info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return true
		}
	}
	return false
}

// fixture puts a busybox base and a previous image (base + two app layers
// saved by the library) into the daemon.
type fixture struct {
	cli            *client.Client
	base, previous string
	baseIDs        []string
	appIDs         []string
}

func newFixture(t *testing.T, cli *client.Client) fixture {
	f := fixture{cli: cli, base: freshName(t, cli), previous: freshName(t, cli)}
	baseImg := testhelpers.BusyboxImage(t, imgutil.DockerTypes)
	testhelpers.DockerPut(t, cli, f.base, baseImg)
	f.baseIDs = testhelpers.DiffIDs(t, baseImg)
	prev := newImage(t, cli, f.previous, local.FromBaseImage(f.base), local.WithHistory())
	for i := range 2 {
		p, id := testhelpers.RandomLayerFile(t, 256<<10)
		must(t, prev.AddLayerWithDiffIDAndHistory(p, id, v1.History{CreatedBy: fmt.Sprintf("app %d", i)}))
		f.appIDs = append(f.appIDs, id)
	}
	must(t, prev.Save())
	return f
}

// TestRebuildSendsOnlyNewLayers: the lifecycle's rebuild (open base and
// previous, reuse app layers, add one, edit config, save) sends only the
// new layer on the classic store and reads nothing back from the daemon.
func testRebuildSendsOnlyNewLayers(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, f.cli.DaemonHost())}
	name := freshName(t, f.cli)
	img := newImage(t, counting, name, local.FromBaseImage(f.base), local.WithPreviousImage(f.previous), local.WithHistory())
	for _, id := range f.appIDs {
		must(t, img.ReuseLayer(id))
	}
	newLayer, newID := testhelpers.RandomLayerFile(t, 128<<10)
	must(t, img.AddLayerWithDiffIDAndHistory(newLayer, newID, v1.History{CreatedBy: "new"}))
	must(t, img.SetEnv("MODE", "rebuild"))
	must(t, img.SetLabel("rebuilt", "yes"))
	must(t, img.SetEntrypoint("/bin/sh", "-c"))
	must(t, img.SetCmd("echo hi"))
	must(t, img.SetWorkingDir("/app"))
	must(t, img.Save())

	fi, err := os.Stat(newLayer)
	must(t, err)
	sent := counting.loadBytes.Load()
	if limit := fi.Size() + 64<<10; sent > limit {
		t.Errorf("load sent %d bytes; the new layer is %d: base or reused layers were sent", sent, fi.Size())
	}
	// The classic store needs nothing read back. The containerd store needs
	// the base's manifest once (the previous image's was kept when saved).
	wantSaves := int64(0)
	if containerdStore(t, f.cli) {
		wantSaves = 1
	}
	if n := counting.saves.Load(); n > wantSaves {
		t.Errorf("the rebuild read %d images back from the daemon, want at most %d", n, wantSaves)
	}
	t.Logf("load sent %d bytes for a new layer of %d; %d image reads", sent, fi.Size(), counting.saves.Load())

	inspect, err := f.cli.ImageInspect(context.Background(), name)
	must(t, err)
	want := append(append(slices.Clone(f.baseIDs), f.appIDs...), newID)
	if !slices.Equal(inspect.RootFS.Layers, want) {
		t.Fatalf("daemon layers = %v, want %v", inspect.RootFS.Layers, want)
	}
	c := inspect.Config
	if !slices.Contains(c.Env, "MODE=rebuild") || c.Labels["rebuilt"] != "yes" || c.WorkingDir != "/app" ||
		!slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(c.Cmd, []string{"echo hi"}) {
		t.Fatalf("daemon config lacks the edits: %+v", c)
	}
	id, err := img.Identifier()
	must(t, err)
	if "sha256:"+id.String() != inspect.ID {
		t.Fatalf("Identifier() = %s, daemon says %s", id, inspect.ID)
	}
	// As the lifecycle's report asks: nothing is read back for it, and on
	// the containerd store it is the manifest the store holds.
	saves := counting.saves.Load()
	size, err := img.ManifestSize()
	must(t, err)
	if n := counting.saves.Load(); n != saves {
		t.Errorf("ManifestSize read the image from the daemon (%d reads)", n-saves)
	}
	if d := inspect.Descriptor; (d != nil && size != d.Size) || size <= 0 {
		t.Errorf("ManifestSize() = %d, the store's manifest is %+v", size, d)
	}
	if !containerdStore(t, f.cli) && counting.loads.Load() != 1 {
		// Podman included: it is known without a load it refuses.
		t.Errorf("the rebuild made %d loads, want 1", counting.loads.Load())
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, f.cli, name))
}

// TestGetLayerReadsTheImageOnce: reading base layers streams one ImageSave.
func testGetLayerReadsTheImageOnce(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, f.cli.DaemonHost())}
	img := newImage(t, counting, freshName(t, f.cli), local.FromBaseImage(f.previous))
	for range 2 {
		for _, id := range []string{f.appIDs[1], f.appIDs[0]} {
			testhelpers.CheckGetLayer(t, img.GetLayer, id)
		}
	}
	if n := counting.saves.Load(); n > 2 {
		t.Fatalf("GetLayer read the image %d times", n)
	}
}

// TestFailedDownloadIsRemembered: a download that failed fails again, it
// is not turned into success, and the daemon is not asked twice.
func testFailedDownloadIsRemembered(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	boom := errors.New("injected save failure")
	counting := &countingClient{Client: f.cli, failSave: boom}
	img := newImage(t, counting, freshName(t, f.cli), local.FromBaseImage(f.previous))
	for range 2 {
		if _, err := img.GetLayer(f.appIDs[0]); !errors.Is(err, boom) {
			t.Fatalf("GetLayer with a failing daemon = %v, want the injected error", err)
		}
	}
	if n := counting.saves.Load(); n != 1 {
		t.Fatalf("ImageSave called %d times, want 1", n)
	}
}

func testSaveFileLoadsAsTheSameImage(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, f.cli)
	img := newImage(t, f.cli, name, local.FromBaseImage(f.previous))
	p, _ := testhelpers.LayerFile(t, map[string]string{"f": "f"})
	must(t, img.AddLayer(p))
	must(t, img.SetLabel("exported", "yes"))
	must(t, img.Save())
	id, err := img.Identifier()
	must(t, err)
	saved, err := f.cli.ImageInspect(context.Background(), name)
	must(t, err)

	file, err := img.SaveFile()
	must(t, err)
	t.Cleanup(func() { os.Remove(file) })
	must(t, img.Delete())
	testhelpers.DockerLoad(t, f.cli, file)
	loaded, err := f.cli.ImageInspect(context.Background(), name)
	must(t, err)
	if !slices.Equal(loaded.RootFS.Layers, saved.RootFS.Layers) || loaded.Config.Labels["exported"] != "yes" {
		t.Fatalf("loaded SaveFile has layers %v and labels %v; saved image had %v", loaded.RootFS.Layers, loaded.Config.Labels, saved.RootFS.Layers)
	}
	// Saved and not edited since, the image is exported as the daemon
	// holds it: the same ID on every store (on the containerd store, the
	// manifest digest).
	if loaded.ID != "sha256:"+id.String() {
		t.Fatalf("loaded SaveFile is %s, saved image was %s", loaded.ID, id)
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, f.cli, name))
}

func testSaveErrorPerName(t *testing.T, cli *client.Client) {
	name, extra := freshName(t, cli), freshName(t, cli)
	img := newImage(t, cli, name)
	p, _ := testhelpers.LayerFile(t, map[string]string{"a": "a"})
	must(t, img.AddLayer(p))
	err := img.Save(extra, "Not A Valid:Name")
	var se imgutil.SaveError
	if !errors.As(err, &se) || len(se.Errors) != 1 || se.Errors[0].ImageName != "Not A Valid:Name" {
		t.Fatalf("Save with a bad extra name = %v, want a SaveError for it alone", err)
	}
	for _, n := range []string{name, extra} {
		if _, err := cli.ImageInspect(context.Background(), n); err != nil {
			t.Errorf("%s not saved: %v", n, err)
		}
	}
}

func testMissingBaseStartsEmpty(t *testing.T, cli *client.Client) {
	img := newImage(t, cli, freshName(t, cli), local.FromBaseImage("imgutil-test/does-not-exist:nope"))
	if _, err := img.TopLayer(); !errors.Is(err, imgutil.ErrNotFound) {
		t.Fatalf("TopLayer of an image whose base is missing = %v, want ErrNotFound (no layers)", err)
	}
}

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

// testPlatformAware: with a platform, inspect, history and save ask the
// daemon for that variant where its API allows, and older daemons still
// work (they are asked without it).
func testPlatformAware(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, cli)
	p := imgutil.Platform{OS: "linux", Architecture: runtime.GOARCH}
	img := newImage(t, cli, name, local.FromBaseImage(f.base), local.WithPreviousImage(f.previous),
		local.WithDefaultPlatform(p), local.WithHistory())
	must(t, img.ReuseLayer(f.appIDs[0]))
	testhelpers.CheckGetLayer(t, img.GetLayer, f.appIDs[0])
	must(t, img.Save())
	if arch, _ := img.Architecture(); arch != runtime.GOARCH {
		t.Fatalf("Architecture() = %s", arch)
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))

	// A single-platform base of another platform is used as it is: the
	// platform only chooses among the manifests of a multi-platform image.
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	foreign := freshName(t, cli)
	testhelpers.DockerPut(t, cli, foreign, testhelpers.PlatformImage(t, other))
	app := freshName(t, cli)
	onForeign := newImage(t, cli, app, local.FromBaseImage(foreign), local.WithPreviousImage(foreign), local.WithDefaultPlatform(p))
	if !onForeign.Found() {
		t.Fatalf("a single-%s base is not found with the %s platform", other, runtime.GOARCH)
	}
	if arch, _ := onForeign.Architecture(); arch != other {
		t.Fatalf("image on a single-%s base has architecture %s", other, arch)
	}
	top, err := onForeign.TopLayer()
	must(t, err)
	testhelpers.CheckGetLayer(t, onForeign.GetLayer, top)
	l, _ := testhelpers.LayerFile(t, map[string]string{"on": "foreign"})
	must(t, onForeign.AddLayer(l))
	must(t, onForeign.Save())
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, app))
}

// testProgress: a save reports the new layer as it goes into the daemon,
// and reading a layer back reports the download.
func testProgress(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	var mu sync.Mutex
	last := map[string]imgutil.Progress{}
	record := func(p imgutil.Progress) {
		mu.Lock()
		defer mu.Unlock()
		last[p.Phase+" "+p.Item] = p
	}
	img := newImage(t, cli, freshName(t, cli), local.FromBaseImage(f.previous), imgutil.WithProgress(record))
	l, diffID := testhelpers.RandomLayerFile(t, 3<<20)
	must(t, img.AddLayerWithDiffID(l, diffID))
	must(t, img.Save())
	if p, ok := last["save "+diffID]; !ok || p.Complete != p.Total || p.Total == 0 {
		t.Fatalf("save progress of the new layer = %+v (all: %v)", p, last)
	}
	testhelpers.CheckGetLayer(t, img.GetLayer, f.appIDs[0])
	downloads := 0
	for k := range last {
		if strings.HasPrefix(k, "download ") {
			downloads++
		}
	}
	if downloads == 0 {
		t.Fatalf("reading a layer back reported no download (all: %v)", last)
	}

	// An image of a shared Store reports too.
	var shared atomic.Int64
	store := local.NewStore(testhelpers.NewSingleConnClient(t, cli))
	defer store.Close()
	in, err := local.NewImageInStore(context.Background(), store, freshName(t, cli), local.FromBaseImage(f.previous),
		imgutil.WithProgress(func(imgutil.Progress) { shared.Add(1) }))
	must(t, err)
	l2, _ := testhelpers.RandomLayerFile(t, 1<<20)
	must(t, in.AddLayer(l2))
	must(t, in.Save())
	if shared.Load() == 0 {
		t.Fatal("an image of a shared Store reported no progress")
	}
}

// testFoundAndDeleteByOpenedID: Found tells whether the image existed when
// opened (as its own base) and is not asked again; Delete removes the image
// by the ID it had then, with every tag, and a missing image is no error.
func testFoundAndDeleteByOpenedID(t *testing.T, cli *client.Client) {
	name, other := freshName(t, cli), freshName(t, cli)
	testhelpers.DockerPut(t, cli, name, testhelpers.BusyboxImage(t, imgutil.DockerTypes))
	_, err := cli.ImageTag(context.Background(), client.ImageTagOptions{Source: name, Target: other})
	must(t, err)

	img := newImage(t, cli, name, local.FromBaseImage(name))
	if !img.Found() || !img.Valid() {
		t.Fatal("an existing image opened as its own base is not Found")
	}
	must(t, img.Delete())
	for _, n := range []string{name, other} {
		if _, err := cli.ImageInspect(context.Background(), n); err == nil {
			t.Errorf("%s still exists after Delete", n)
		}
	}
	if img.Found() {
		t.Error("Found() = true after Delete")
	}
	must(t, img.Delete())

	missing := newImage(t, cli, freshName(t, cli), local.FromBaseImage("imgutil-test/never-was:latest"))
	if missing.Found() {
		t.Error("an image opened from a missing base is Found")
	}
	must(t, missing.Delete())
}

// TestStaleLayerDirsAreSwept: a process that read layers and exited without
// Close (as callers of the existing library do) leaves a directory that the
// next process removes; a directory of a live process is left alone.
func TestStaleLayerDirsAreSwept(t *testing.T) {
	dead := exec.Command("true")
	must(t, dead.Run())
	stale := filepath.Join(os.TempDir(), fmt.Sprintf("imgutil-local-%d-abc", dead.Process.Pid))
	live := filepath.Join(os.TempDir(), fmt.Sprintf("imgutil-local-%d-abc", os.Getppid()))
	for _, d := range []string{stale, live} {
		must(t, os.MkdirAll(filepath.Join(d, "layer"), 0o700))
	}
	defer os.RemoveAll(live)
	local.SweepStale()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory of a process that is gone was not removed: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the directory of a running process was removed: %v", err)
	}
}

// testUneditedSaveFileKeepsTheID: an image exported as the daemon holds it
// (opened as its own base, not edited) loads back as the same image, ID
// included, on every store (the containerd store's ID is a manifest
// digest, which only the daemon's own archive keeps).
func testUneditedSaveFileKeepsTheID(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	before := imageID(t, cli, f.previous)
	img := newImage(t, cli, f.previous, local.FromBaseImage(f.previous))
	file, err := img.SaveFile()
	must(t, err)
	t.Cleanup(func() { os.Remove(file) })
	_, err = cli.ImageRemove(context.Background(), f.previous, client.ImageRemoveOptions{Force: true})
	must(t, err)
	testhelpers.DockerLoad(t, cli, file)
	if after := imageID(t, cli, f.previous); after != before {
		t.Fatalf("the exported image loads back as %s, was %s", after, before)
	}
}
