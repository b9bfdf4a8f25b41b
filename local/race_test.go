package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// testConcurrentSavesOfOneName: writers save different images (half on a
// daemon base, half from scratch) to one name at once, a few rounds. Each
// gets a true answer: the ID of the image it saved, which holds its layer
// and label, or an error matching imgutil.ErrTagTakenOver (another save
// moved the name away before the answer). The name ends on a complete
// image of a writer told it succeeded, and no staging or probe tag is left.
func testConcurrentSavesOfOneName(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, cli)
	const writers = 6
	var ids []string
	t.Cleanup(func() {
		for _, id := range ids {
			_, _ = cli.ImageRemove(context.Background(), id, client.ImageRemoveOptions{Force: true})
		}
	})
	for round := range 3 {
		type answer struct {
			id, diffID string
			err        error
		}
		answers := make([]answer, writers)
		var wg sync.WaitGroup
		for w := range writers {
			p, diffID := testhelpers.RandomLayerFile(t, 32<<10)
			answers[w].diffID = diffID
			wg.Add(1)
			go func() {
				defer wg.Done()
				var opts []imgutil.ImageOption
				if w%2 == 0 {
					opts = append(opts, local.FromBaseImage(f.base))
				}
				// Each writer's client serves one request at a time.
				img, err := local.NewImage(name, testhelpers.NewSingleConnClient(t, cli), opts...)
				if err != nil {
					answers[w].err = err
					return
				}
				defer img.Close()
				err = img.AddLayer(p)
				if err == nil {
					err = img.SetLabel("writer", fmt.Sprint(round, "-", w))
				}
				if err == nil {
					err = img.Save()
				}
				if err == nil {
					id, ierr := img.Identifier()
					err = ierr
					answers[w].id = "sha256:" + id.String()
				}
				answers[w].err = err
			}()
		}
		wg.Wait()
		var succeeded []string
		for w, a := range answers {
			if a.err != nil {
				if !errors.Is(a.err, imgutil.ErrTagTakenOver) {
					t.Fatalf("round %d writer %d: %v (want success or ErrTagTakenOver)", round, w, a.err)
				}
				continue
			}
			succeeded = append(succeeded, a.id)
			ids = append(ids, a.id)
			res, err := cli.ImageInspect(context.Background(), a.id)
			if err != nil {
				// The containerd store drops an image no name points to:
				// only a later save of the name may have done that.
				if containerdStore(t, cli) {
					continue
				}
				t.Fatalf("round %d writer %d: saved image %s does not exist: %v", round, w, a.id, err)
			}
			if !slices.Contains(res.RootFS.Layers, a.diffID) || res.Config.Labels["writer"] != fmt.Sprint(round, "-", w) {
				t.Fatalf("round %d writer %d: image %s has layers %v and labels %v, not its own", round, w, a.id, res.RootFS.Layers, res.Config.Labels)
			}
		}
		final := imageID(t, cli, name)
		if !slices.Contains(succeeded, final) {
			t.Fatalf("round %d: %s is %s, which no writer was told it saved (%v)", round, name, final, succeeded)
		}
		testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
	}
	assertNoStagingTags(t, cli)
}

// testLifecycleRunLeavesNothing: a process that does what a lifecycle
// exporter does (open base and previous image, read a layer of the
// previous one, reuse one, add one, save) and exits without Close, as
// callers of the existing library do, leaves nothing in the temp dir.
func testLifecycleRunLeavesNothing(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, cli)
	p, _ := testhelpers.LayerFile(t, map[string]string{"new": "layer"})
	cmd := lifecycleProcess(inThisNamespace, cli.DaemonHost(),
		"HELPER_NAME="+name, "HELPER_BASE="+f.base, "HELPER_PREVIOUS="+f.previous,
		"HELPER_READ="+f.appIDs[0], "HELPER_REUSE="+f.appIDs[1], "HELPER_LAYER="+p)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "helper saved") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The helper's own TestMain fails it for any temp entry left in its
	// temp dir; its pid names nothing here either.
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("*%d-*", cmd.Process.Pid)))
	if len(left) > 0 {
		t.Fatalf("a run that exited without Close left %v", left)
	}
}

// testEveryProcessFirstSave: a process's first save is the one that learns
// the daemon (Podman's kind, the containerd store's manifests); lifecycle
// exports are each a new process with empty caches, on one connection.
// Eight in a row must all succeed, the connection serving every request
// (the helper's client fails it otherwise).
func testEveryProcessFirstSave(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, cli)
	p, _ := testhelpers.RandomLayerFile(t, 16<<20)
	for round := range 8 {
		cmd := lifecycleProcess(inThisNamespace, cli.DaemonHost(),
			local.ManifestCacheEnv+"="+t.TempDir(),
			"HELPER_NAME="+name, "HELPER_BASE="+f.base, "HELPER_PREVIOUS="+f.previous,
			"HELPER_REUSE="+f.appIDs[round%2], "HELPER_LAYER="+p)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "helper saved") {
			t.Fatalf("round %d: helper: %v\n%s", round, err, out)
		}
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
	assertNoStagingTags(t, cli)
}

// TestLifecycleHelper is the process testLifecycleRunLeavesNothing runs.
func TestLifecycleHelper(t *testing.T) {
	if os.Getenv("IMGUTIL_LIFECYCLE_HELPER") == "" {
		t.Skip("run by testLifecycleRunLeavesNothing")
	}
	if os.Getenv("HELPER_NOOP") != "" {
		fmt.Println("helper saved nothing")
		return // what starting a process costs
	}
	raw := testhelpers.DockerClient(t)
	var cli local.DockerClient = testhelpers.NewSingleConnClient(t, raw)
	if os.Getenv("HELPER_POOLED") != "" {
		cli = raw // as pack's client: connections dialled as needed
	}
	var opts []imgutil.ImageOption
	if base := os.Getenv("HELPER_BASE"); base != "" {
		opts = append(opts, local.FromBaseImage(base), local.WithPreviousImage(os.Getenv("HELPER_PREVIOUS")))
	}
	img, err := local.NewImage(os.Getenv("HELPER_NAME"), cli, opts...)
	must(t, err)
	// As the restorer does: the previous image opened on its own.
	if read := os.Getenv("HELPER_READ"); read != "" {
		prev, err := local.NewImage(os.Getenv("HELPER_PREVIOUS"), cli, local.FromBaseImage(os.Getenv("HELPER_PREVIOUS")))
		must(t, err)
		rc, err := prev.GetLayer(read)
		must(t, err)
		_, err = io.Copy(io.Discard, rc)
		must(t, err)
		must(t, rc.Close())
	}
	if reuse := os.Getenv("HELPER_REUSE"); reuse != "" {
		must(t, img.ReuseLayer(reuse))
	}
	must(t, img.AddLayer(os.Getenv("HELPER_LAYER")))
	must(t, img.Save())
	fmt.Println("helper saved")
	// No Close: the process ends here.
}

// testKilledProcessNamesAreSwept: a save with no record of a killed
// process in its ledger of names does not look in the daemon; one that
// finds a record of a process of its pid space that is gone removes the
// names of processes gone, and those of other spaces (other build
// containers) older than an hour; a name of a process that may still run
// stays.
func testKilledProcessNamesAreSwept(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	gone := exec.Command("true")
	must(t, gone.Run())
	dead := gone.Process.Pid
	now := time.Now()
	killedHere := []string{
		"imgutil-staging/0123456789abcdef:" + local.OwnedTagOf(dead, now, false),
		"imgutil-probe/manifests:" + local.OwnedTagOf(dead, now.Add(time.Second), false),
	}
	oldElsewhere := "imgutil-staging/0123456789abcdef:" + local.OwnedTagOf(1, now.Add(-2*time.Hour), true)
	live := []string{
		"imgutil-staging/0123456789abcdef:" + local.OwnedTagOf(os.Getpid(), now, false),
		"imgutil-staging/0123456789abcdef:" + local.OwnedTagOf(1, now, true),
	}
	for _, n := range append(append(slices.Clone(killedHere), oldElsewhere), live...) {
		_, err := cli.ImageTag(context.Background(), client.ImageTagOptions{Source: f.previous, Target: n})
		must(t, err)
		testhelpers.DockerCleanup(t, cli, n)
	}
	save := func() {
		s := local.NewStore(testhelpers.NewSingleConnClient(t, cli))
		local.SweepNever(s) // no sweep with nothing to go on
		img, err := local.NewImageInStore(context.Background(), s, freshName(t, cli), local.FromBaseImage(f.base), local.WithPreviousImage(f.previous))
		must(t, err)
		must(t, img.ReuseLayer(f.appIDs[0]))
		must(t, img.Save())
		must(t, img.Close())
	}
	// No record of a killed process: the save does not list the daemon.
	save()
	for _, n := range append(slices.Clone(killedHere), oldElsewhere) {
		if imageID(t, cli, n) == "" {
			t.Errorf("%s was removed by a save with nothing to go on", n)
		}
	}
	// What a process killed here leaves: its names' records.
	for _, n := range killedHere {
		local.RecordName(cli.DaemonHost(), n[strings.LastIndex(n, ":")+1:])
	}
	save()
	for _, n := range append(slices.Clone(killedHere), oldElsewhere) {
		if imageID(t, cli, n) != "" {
			t.Errorf("%s is still there after a save that found a killed process's record", n)
		}
	}
	for _, n := range live {
		if imageID(t, cli, n) == "" {
			t.Errorf("%s, a name of a process that may still run, was removed", n)
		}
	}
}

// testEditedConfigKeepsWhatTheExistingLibraryKeeps: an edited image on a
// base whose config has docker_version, container, container_config and
// runtime fields beyond the twelve the existing library keeps is saved
// with none of those, so that the same inputs give the same image ID.
func testEditedConfigKeepsWhatTheExistingLibraryKeeps(t *testing.T, cli *client.Client) {
	base := testhelpers.BusyboxImage(t, imgutil.DockerTypes)
	cf, err := base.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.DockerVersion = "20.10.24+dfsg1" //nolint:staticcheck // what old daemons write
	cf.Container = "0123456789ab"
	cf.Config.Hostname, cf.Config.Image, cf.Config.StopSignal = "builder", "sha256:abc", "SIGTERM"
	base, err = mutate.ConfigFile(base, cf)
	must(t, err)
	// container_config, which go-containerregistry's config has no field for.
	rawCfg, err := base.RawConfigFile()
	must(t, err)
	var withCC map[string]any
	must(t, json.Unmarshal(rawCfg, &withCC))
	withCC["container_config"] = map[string]any{"Hostname": "0123456789ab", "Cmd": []string{"/bin/sh", "-c", "#(nop)"}}
	rawCfg, err = json.Marshal(withCC)
	must(t, err)
	base = &rawConfigImage{Image: base, raw: rawCfg}
	baseName, name := freshName(t, cli), freshName(t, cli)
	testhelpers.DockerPut(t, cli, baseName, base)
	img := newImage(t, cli, name, local.FromBaseImage(baseName))
	must(t, img.SetLabel("edited", "yes"))
	must(t, img.Save())
	raw, err := testhelpers.DockerRead(t, cli, name).RawConfigFile()
	must(t, err)
	var saved map[string]json.RawMessage
	must(t, json.Unmarshal(raw, &saved))
	for _, k := range []string{"docker_version", "container", "container_config"} {
		if _, ok := saved[k]; ok {
			t.Errorf("the saved config carries the base's %s: %s", k, raw)
		}
	}
	var runtime map[string]json.RawMessage
	must(t, json.Unmarshal(saved["config"], &runtime))
	for k := range runtime {
		if !slices.Contains([]string{"Cmd", "Entrypoint", "Env", "ExposedPorts", "Healthcheck", "Labels", "OnBuild",
			"Shell", "StopSignal", "User", "Volumes", "WorkingDir"}, k) {
			t.Errorf("the saved runtime config carries %s, which the existing library leaves out: %s", k, saved["config"])
		}
	}
	if !strings.Contains(string(saved["config"]), "SIGTERM") {
		t.Errorf("the saved runtime config lost StopSignal: %s", saved["config"])
	}
}

// rawConfigImage is an image with a config given byte for byte.
type rawConfigImage struct {
	v1.Image
	raw []byte
}

func (r *rawConfigImage) RawConfigFile() ([]byte, error) { return r.raw, nil }

func (r *rawConfigImage) ConfigName() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(r.raw))
	return h, err
}

// testKilledMidSaveLeavesNoStagingName: a process killed (kill -9) after
// the daemon loaded its staged image, before it named it, leaves that
// image under its staging name; the next save to the daemon removes it.
func testKilledMidSaveLeavesNoStagingName(t *testing.T, cli *client.Client) {
	p := startFaultProxy(t, cli)
	p.answerHeld = make(chan struct{})
	p.lateLoadAnswer.Store(true)
	layer, _ := testhelpers.RandomLayerFile(t, 1<<20)
	// From scratch: the load is staged on every daemon.
	cmd := lifecycleProcess(inThisNamespace, p.client.DaemonHost(),
		"HELPER_NAME="+freshName(t, cli), "HELPER_LAYER="+layer)
	must(t, cmd.Start())
	select {
	case <-p.answerHeld:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("the helper's load never reached the daemon")
	}
	must(t, cmd.Process.Kill())
	_ = cmd.Wait()
	mark := fmt.Sprintf("-%d-", cmd.Process.Pid)
	left := func() []string {
		res, err := cli.ImageList(context.Background(), client.ImageListOptions{})
		must(t, err)
		var out []string
		for _, im := range res.Items {
			for _, tag := range im.RepoTags {
				if strings.Contains(tag, "imgutil-staging/") && strings.Contains(tag, mark) {
					out = append(out, tag)
				}
			}
		}
		return out
	}
	staged := left()
	for _, n := range staged {
		testhelpers.DockerCleanup(t, cli, n)
	}
	if len(staged) == 0 {
		t.Fatal("the killed helper left no staging name: the test did not kill it where it meant to")
	}
	// The next save to that daemon, as the killed process reached it (the
	// ledger of names is kept per daemon host).
	p.lateLoadAnswer.Store(false)
	img := newImage(t, cutClient{p.client}, freshName(t, cli))
	l, _ := testhelpers.RandomLayerFile(t, 64<<10)
	must(t, img.AddLayer(l))
	must(t, img.Save())
	if still := left(); len(still) > 0 {
		t.Errorf("a save after the kill left %v", still)
	}
}
