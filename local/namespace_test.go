package local_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// Ways to start a lifecycle-like process (TestLifecycleHelper): here, or
// in a pid namespace of its own as build containers sharing this daemon,
// hostname and boot run it: as its pid 1, as a low pid under a shell, or
// as a pid that a new namespace's pid 1 (its threads hold the low pids)
// lacks.
var (
	inThisNamespace = []string{}
	asPid1          = []string{"unshare", "--pid", "--fork", "--mount-proc"}
	asLowPid        = []string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", `"$0" "$@"; exit $?`}
	asHighPid       = []string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
		`i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; "$0" "$@"; exit $?`}
)

// testHeldSaveSurvivesOtherNamespaces: a save held between its staged
// load and its naming (the daemon's answer held back) while a process in
// another pid namespace, same hostname and daemon, makes its first save
// (which sweeps names killed processes left): the held save succeeds. Each
// way round: the sweeper as pid 1 and the owner a low pid of another
// namespace, the reverse, and the owner in the test's own namespace.
func testHeldSaveSurvivesOtherNamespaces(t *testing.T, cli *client.Client) {
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare for pid namespaces")
	}
	for _, c := range []struct {
		name           string
		owner, sweeper []string
	}{
		{"OwnerHereSweeperPid1", inThisNamespace, asPid1},
		{"OwnerLowPidSweeperPid1", asLowPid, asPid1},
		{"OwnerHighPidSweeperPid1", asHighPid, asPid1},
		{"OwnerPid1SweeperLowPid", asPid1, asLowPid},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startFaultProxy(t, cli)
			p.answerHeld, p.release = make(chan struct{}), make(chan struct{})
			p.lateLoadAnswer.Store(true)
			name := freshName(t, cli)
			layer, _ := testhelpers.RandomLayerFile(t, 256<<10)
			// From scratch: staged on every daemon.
			owner := lifecycleProcess(c.owner, p.client.DaemonHost(), "HELPER_NAME="+name, "HELPER_LAYER="+layer)
			var out strings.Builder
			owner.Stdout, owner.Stderr = &out, &out
			must(t, owner.Start())
			done := make(chan error, 1)
			go func() { done <- owner.Wait() }()
			select {
			case <-p.answerHeld:
			case err := <-done:
				t.Fatalf("the owner ended before its load was held: %v\n%s", err, out.String())
			case <-time.After(2 * time.Minute):
				_ = owner.Process.Kill()
				t.Fatal("the owner's load never reached the daemon")
			}
			other := freshName(t, cli)
			l2, _ := testhelpers.RandomLayerFile(t, 64<<10)
			// No ledger: the sweeper's first save lists the daemon's names
			// and judges each (with a ledger it looks only when a record of
			// its own space says a process was killed).
			sweeper := lifecycleProcess(c.sweeper, cli.DaemonHost(), local.LedgerDirEnv+"=off", "HELPER_NAME="+other, "HELPER_LAYER="+l2)
			if raw, err := sweeper.CombinedOutput(); err != nil || !strings.Contains(string(raw), "helper saved") {
				close(p.release)
				t.Fatalf("the sweeper: %v\n%s", err, raw)
			}
			close(p.release)
			if err := <-done; err != nil || !strings.Contains(out.String(), "helper saved") {
				t.Fatalf("the held save failed after a save in another pid namespace: %v\n%s", err, out.String())
			}
			testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
		})
	}
}

// lifecycleProcess is TestLifecycleHelper started under prefix (see
// inThisNamespace) against host with env.
func lifecycleProcess(prefix []string, host string, env ...string) *exec.Cmd {
	argv := append(append([]string{}, prefix...), os.Args[0], "-test.run=^TestLifecycleHelper$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(append(os.Environ(), "IMGUTIL_LIFECYCLE_HELPER=1"), testhelpers.DaemonEnv(host)...), env...)
	return cmd
}

// testProbeRemovedUnderItIsRemade: a manifest probe whose image another
// process removes before it is exported (a prune, another build's
// cleanup) is made again: the save still learns the base's manifest
// from probes, never reads the base's archive, and the image is whole.
func testProbeRemovedUnderItIsRemade(t *testing.T, cli *client.Client) {
	if !containerdStore(t, cli) {
		t.Skip("manifest probes are made on the containerd image store")
	}
	f := newFixture(t, cli)
	t.Setenv(local.ManifestCacheEnv, t.TempDir()) // the base's manifest unknown
	p := startFaultProxy(t, cli)
	p.removeProbe.Store(true)
	name := freshName(t, cli)
	img := newImage(t, p.client, name, local.FromBaseImage(f.base))
	l, _ := testhelpers.RandomLayerFile(t, 64<<10)
	must(t, img.AddLayer(l))
	must(t, img.Save())
	if p.removeProbe.Load() {
		t.Fatal("no manifest probe was made")
	}
	if got, probes := p.saves.Load(), p.probeSaves.Load(); probes != 2 || got != probes {
		t.Errorf("%d exports, %d of them probes; want the removed probe made again and nothing else read", got, probes)
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
}

// testLayerFilesWithoutProc: where layers read from the daemon cannot be
// kept open and unlinked (macOS, Windows, Linux without /proc), they are
// files named by diffID in the Store's directory, read back whole, and
// gone with the directory at Close; a process that exits without Close
// leaves the directory to the next one (TestStaleLayerDirsAreSwept).
func testLayerFilesWithoutProc(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	s := local.NewStore(testhelpers.NewSingleConnClient(t, cli))
	local.KeepLayerFiles(s)
	img, err := local.NewImageInStore(context.Background(), s, f.previous, local.FromBaseImage(f.previous))
	must(t, err)
	testhelpers.CheckGetLayer(t, img.GetLayer, f.appIDs[0])
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "imgutil-local-*"))
	found := false
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, strings.TrimPrefix(f.appIDs[0], "sha256:"))); err == nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("the layer read is no named file in %v", dirs)
	}
	testhelpers.CheckGetLayer(t, img.GetLayer, f.appIDs[0]) // from the file
	must(t, s.Close())
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "imgutil-local-*")); len(left) > 0 {
		t.Fatalf("left after Close: %v", left)
	}
}

// testBuildToolLayerByteForByte: a layer as build tools write it (absolute
// names, a hard and a symbolic link by absolute path) is taken by the
// daemon and comes back from it byte for byte: read out of the daemon
// again, it hashes to the file's diffID.
func testBuildToolLayerByteForByte(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	p, diffID := testhelpers.BuildToolLayerFile(t, "word")
	name := freshName(t, cli)
	img := newImage(t, cli, name, local.FromBaseImage(f.base))
	must(t, img.AddLayerWithDiffID(p, diffID))
	must(t, img.Save())
	again := newImage(t, cli, name, local.FromBaseImage(name))
	testhelpers.CheckGetLayer(t, again.GetLayer, diffID)
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
}
