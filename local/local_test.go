package local_test

import (
	"context"
	"errors"
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

	"github.com/imgbridge/imgutil/internal/owner"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

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
	counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, f.cli.DaemonHost()), failSave: boom}
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
	stale := filepath.Join(os.TempDir(), "imgutil-local-"+owner.TokenFor(dead.Process.Pid, time.Now()))
	live := filepath.Join(os.TempDir(), "imgutil-local-"+owner.TokenFor(os.Getppid(), time.Now()))
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
