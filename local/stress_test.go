package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// builders is how many lifecycle-like exports run at once in the stress.
const builders = 8

// stressResult is what rounds of concurrent builds took, and what 8 bare
// loads of the same new layers, at once, take.
type stressResult struct {
	rounds     int
	ours, bare []time.Duration
	// bareOCI: the same bare loads as OCI layouts (on the containerd
	// store, what a load that leaves stored blobs out must be).
	bareOCI []time.Duration
	// start: builders processes started at once that do nothing.
	start []time.Duration
	// failed are the exports that failed; cut, those of them on one
	// connection whose load the daemon cut (see cutMidLoad).
	failed, cut   []string
	leftoverNames []string
}

// cutMidLoad reports whether an export failed because the daemon closed
// its connection during a load without an answer: moby on the containerd
// store does so when a prune removes the lease of a load it has not read
// yet (it stops reading, and net/http closes a connection with more than
// 256 KiB of request left unread). On lifecycle's one connection nothing
// can be sent again after that, so the call that fails may be a later
// one (a manifest probe's load cut, then the image's archive asked for).
// A connection spoilt by us (a response left unread, an overlapping call)
// fails in other words, and is not taken for a cut.
func cutMidLoad(out string) bool {
	// The words vary with the moment and the call: "broken pipe",
	// "connection reset by peer", "EOF", "http: server closed idle
	// connection".
	return (strings.Contains(out, "docker daemon unreachable") || strings.Contains(out, "error during connect")) &&
		!strings.Contains(out, "malformed HTTP") && !strings.Contains(out, "already in use")
}

// stressBuilds runs rounds of builders exports at once, each a new process
// with an empty manifest cache, half through the lifecycle's one-connection
// client and half through a client that dials as it needs (pack's), half
// of each in pid namespaces of their own, all on one shared run
// image, each with its own previous image (whose layer it reuses) and a
// new layer of newSize; meanwhile another process loops `docker image
// prune -f` and names and removes unrelated images. Each export's image is
// read back and hashed against its diffIDs; no staging or probe name of
// the run may be left. With bare, each round is followed by builders bare
// loads of the same new layers at once; withChaos says what else runs on
// the daemon meanwhile.
func stressBuilds(t testing.TB, cli *client.Client, rounds, newSize int, bare bool, withChaos chaosLevel) stressResult {
	unshare := os.Geteuid() == 0
	if _, err := exec.LookPath("unshare"); err != nil {
		unshare = false
	}
	start := time.Now()
	run := freshName(t, cli)
	testhelpers.DockerPut(t, cli, run, testhelpers.BusyboxImage(t, imgutil.DockerTypes))
	// Each builder's first export (no prune yet): its previous image.
	apps := make([]string, builders)
	reuse := make([]string, builders)
	for i := range apps {
		apps[i] = freshName(t, cli)
		p, id := testhelpers.RandomLayerFile(t, 64<<10)
		out, err := lifecycleProcess(inThisNamespace, cli.DaemonHost(), cacheOff,
			"HELPER_NAME="+apps[i], "HELPER_BASE="+run, "HELPER_PREVIOUS="+apps[i], "HELPER_LAYER="+p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "helper saved") {
			t.Fatalf("first export of builder %d: %v\n%s", i, err, out)
		}
		reuse[i] = id
	}
	stop := func() {}
	if withChaos != quiet {
		stop = chaos(t, cli, run, !isPodman(t, cli), withChaos == pruneAndCollect)
	}
	defer stop()
	var res stressResult
	res.rounds = rounds
	for round := range rounds {
		layers := make([]string, builders)
		for i := range layers {
			layers[i], _ = testhelpers.RandomLayerFile(t, newSize)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		began := time.Now()
		for i := range builders {
			prefix := inThisNamespace
			if unshare && i%2 == 1 {
				prefix = asPid1
			}
			pooled := "HELPER_POOLED="
			if i%4 >= 2 {
				pooled += "1"
			}
			wg.Go(func() {
				// Each build container has a cache directory, and so a
				// ledger of names, of its own.
				ledger := t.TempDir()
				cmd := lifecycleProcess(prefix, cli.DaemonHost(), cacheOff, pooled, local.LedgerDirEnv+"="+ledger,
					"HELPER_NAME="+apps[i], "HELPER_BASE="+run, "HELPER_PREVIOUS="+apps[i],
					"HELPER_REUSE="+reuse[i], "HELPER_LAYER="+layers[i])
				out, err := cmd.CombinedOutput()
				saved := err == nil && strings.Contains(string(out), "helper saved")
				if records, _ := filepath.Glob(filepath.Join(ledger, "*", "*")); saved && len(records) > 0 {
					// An export that succeeded removed every name it made.
					mu.Lock()
					res.failed = append(res.failed, fmt.Sprintf("round %d builder %d left records of names: %v", round, i, records))
					mu.Unlock()
				}
				if !saved {
					what := fmt.Sprintf("round %d builder %d (%s): %v: %s", round, i, pooled, err, lastLines(string(out), 6))
					mu.Lock()
					res.failed = append(res.failed, what)
					if !strings.HasSuffix(pooled, "1") && cutMidLoad(string(out)) {
						res.cut = append(res.cut, what)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		res.ours = append(res.ours, time.Since(began))
		if bare {
			res.bare = append(res.bare, bareLoadsAtOnce(t, cli, layers, bareArchive))
			if onContainerdStore(t, cli) {
				res.bareOCI = append(res.bareOCI, bareLoadsAtOnce(t, cli, layers, bareOCIArchive))
			}
			res.start = append(res.start, startsAtOnce(t, cli))
		}
	}
	stop()
	for _, app := range apps {
		testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, app))
	}
	res.leftoverNames = namesLeftSince(t, cli, start)
	return res
}

// chaos starts another process that, until stopped, prunes dangling
// images (when prune) and names and removes an unrelated image on the
// daemon (on moby's containerd store through its containerd, collecting
// garbage at once, where it is reachable), as users and CI cleanup jobs do
// while builds run. Podman is not
// pruned: Podman 4.3's prune removes images made while it runs even once
// they are named (11 of 20 plain `docker import`s at once under a prune
// loop were gone afterwards), whoever made them.
func chaos(t testing.TB, cli *client.Client, some string, prune, collect bool) (stop func()) {
	// With collect, on moby's containerd store where its containerd is
	// reachable, the unrelated name is removed through containerd with a
	// synchronous garbage collection (ctr images rm --sync), as node
	// cleanups do.
	rmi := `docker rmi "$3"`
	if sock, host, ok := strings.Cut(os.Getenv("IMGUTIL_MOBY_CONTAINERD"), "="); collect && ok && host == cli.DaemonHost() {
		if _, err := exec.LookPath("ctr"); err == nil {
			rmi = `ctr --address ` + sock + ` -n moby images rm --sync "docker.io/$3"`
		}
	}
	// A prune every half second (one that starts as soon as the last ends
	// leaves moby's containerd store no time to finish loads of 8 at once:
	// each lasts longer than the gap, and every prune drops all in flight),
	// and the unrelated name made and removed every tenth of a second.
	// Both loops end with the test process ($4), should it die before it
	// stops them (a test binary's timeout): a prune loop left running
	// fails every later test on the daemon.
	script := `[ -z "$2" ] || while kill -0 "$4" 2>/dev/null; do docker image prune -f >/dev/null 2>&1; sleep 0.5; done &
		while kill -0 "$4" 2>/dev/null; do docker tag "$1" "$3" >/dev/null 2>&1; ` + rmi + ` >/dev/null 2>&1; sleep 0.1; done`
	flag := ""
	if prune {
		flag = "prune"
	}
	cmd := exec.Command("bash", "-c", script, "chaos", some, flag, freshName(t, cli), strconv.Itoa(os.Getpid()))
	cmd.Env = append(os.Environ(), testhelpers.DaemonEnv(cli.DaemonHost())...)
	ownGroup(cmd) // stopped with its prune in flight
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the prune loop: %v", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			killGroup(cmd)
			_ = cmd.Wait()
		})
	}
}

// bareLoadsAtOnce times builders plain loads at once, each of an archive
// of exactly one of layers: what the daemon needs to take the new layers
// of a round.
func bareLoadsAtOnce(t testing.TB, cli *client.Client, layers []string, write func(*testing.B, string, ...string) string) time.Duration {
	b, ok := t.(*testing.B)
	if !ok {
		return 0
	}
	paths := make([]string, len(layers))
	for i, l := range layers {
		paths[i] = write(b, freshName(t, cli), l)
	}
	var wg sync.WaitGroup
	began := time.Now()
	for _, p := range paths {
		wg.Go(func() { timeLoad(b, context.Background(), cli, p) })
	}
	wg.Wait()
	return time.Since(began)
}

// startsAtOnce times builders helper processes started at once that do
// nothing: what a new process per export costs before any call.
func startsAtOnce(t testing.TB, cli *client.Client) time.Duration {
	var wg sync.WaitGroup
	began := time.Now()
	for range builders {
		wg.Go(func() {
			if out, err := lifecycleProcess(inThisNamespace, cli.DaemonHost(), "HELPER_NOOP=1").CombinedOutput(); err != nil {
				t.Errorf("an empty helper: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	return time.Since(began)
}

// namesLeftSince lists the staging and probe names in the daemon whose
// owner token says they were made since start (by this run).
func namesLeftSince(t testing.TB, cli *client.Client, start time.Time) []string {
	res, err := cli.ImageList(context.Background(), client.ImageListOptions{
		Filters: make(client.Filters).Add("reference", "imgutil-staging/*", "imgutil-probe/*"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, im := range res.Items {
		for _, tag := range im.RepoTags {
			_, tok, _ := strings.Cut(tag[strings.LastIndex(tag, "/")+1:], ":")
			parts := strings.Split(tok, "-")
			if len(parts) == 5 {
				var secs int64
				if _, err := fmt.Sscan(parts[2], &secs); err == nil && secs >= start.Unix()-1 {
					left = append(left, tag)
				}
			}
		}
	}
	return left
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// testManyBuildsOneDaemon: rounds of 8 lifecycle-like exports at once
// (half in pid namespaces of their own) while another process prunes and
// names and removes unrelated images: every export succeeds, but for
// those on one connection that the daemon cut during a load (the
// containerd store: see cutMidLoad); every result hashes to its diffIDs,
// and no staging or probe name is left.
func testManyBuildsOneDaemon(t *testing.T, cli *client.Client) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	res := stressBuilds(t, cli, rounds, 1<<20, false, pruneLoop)
	for _, f := range res.failed {
		if !slices.Contains(res.cut, f) || !containerdStore(t, cli) {
			t.Error(f)
		}
	}
	if len(res.cut) > 0 {
		t.Logf("%d of %d exports on one connection failed: the daemon cut the connection during a load under the prune", len(res.cut), builders*rounds/2)
	}
	if len(res.cut) > builders*rounds/4 {
		// Seen here: 0 or 1 of 12 in a run.
		t.Errorf("%d of %d exports on one connection failed as cut: more than half, the cut is no longer the daemon's rare answer to a prune", len(res.cut), builders*rounds/2)
	}
	if len(res.leftoverNames) > 0 {
		t.Errorf("names left once every export ended: %v", res.leftoverNames)
	}
}

// BenchmarkManyBuildsOneDaemon: per daemon, rounds of 8 lifecycle-like
// exports at once (see stressBuilds) against 8 bare loads at once of the
// same new layers (4 MiB each), both with nothing else on the daemon (a
// bare load under the prune loop fails: moby removes its lease); then as
// many rounds under the prune loop, and as many with containerd's garbage
// collections too, counting what failed.
func BenchmarkManyBuildsOneDaemon(b *testing.B) {
	for _, d := range testhelpers.DockerDaemons(b) {
		b.Run(d.Name, func(b *testing.B) {
			calm := stressBuilds(b, d.Client, b.N, 4<<20, true, quiet)
			loud := stressBuilds(b, d.Client, b.N, 4<<20, false, pruneLoop)
			gc := stressBuilds(b, d.Client, b.N, 4<<20, false, pruneAndCollect)
			o, l, p, st := median(calm.ours), median(calm.bare), median(loud.ours), median(calm.start)
			oci := ""
			if len(calm.bareOCI) > 0 {
				lo := median(calm.bareOCI)
				oci = fmt.Sprintf(", as OCI layouts=%v (%.2fx)", lo.Round(time.Millisecond), float64(o)/float64(lo))
			}
			b.ReportMetric(float64(o)/float64(l), "ratio")
			b.ReportMetric(float64(len(loud.failed)), "failed")
			b.ReportMetric(0, "ns/op")
			fmt.Printf("BENCH many-builds %-24s 8 exports at once=%v (8 empty processes at once: %v), 8 bare loads at once=%v (%.2fx)%s (quiet; failed %d); under the prune loop=%v, failed=%d of %d (%d of them on one connection cut by the daemon mid-load); with garbage collections too: failed=%d (%d cut); names left=%d\n",
				b.Name(), o.Round(time.Millisecond), st.Round(time.Millisecond), l.Round(time.Millisecond), float64(o)/float64(l), oci, len(calm.failed),
				p.Round(time.Millisecond), len(loud.failed), builders*loud.rounds, len(loud.cut), len(gc.failed), len(gc.cut),
				len(calm.leftoverNames)+len(loud.leftoverNames)+len(gc.leftoverNames))
			for _, f := range append(append(calm.failed, loud.failed...), gc.failed...) {
				fmt.Println("BENCH many-builds failure:", f)
			}
		})
	}
}

// chaosLevel is what runs on the daemon beside a stress (see chaos).
type chaosLevel int

const (
	quiet           chaosLevel = iota // nothing
	pruneLoop                         // a prune every half second, an unrelated name made and removed
	pruneAndCollect                   // also containerd's garbage collection at once, where reachable
)

// cacheOff is the environment of a process with an empty manifest cache,
// as a new build container has.
const cacheOff = "IMGUTIL_MANIFEST_CACHE=off"

// isPodman reports whether cli talks to Podman's service.
func isPodman(t testing.TB, cli *client.Client) bool {
	v, err := cli.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Components {
		if strings.Contains(c.Name, "Podman") {
			return true
		}
	}
	return false
}

// onContainerdStore reports whether cli's daemon uses the containerd image
// store.
func onContainerdStore(t testing.TB, cli *client.Client) bool {
	info, err := cli.Info(context.Background(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range info.Info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return true
		}
	}
	return false
}
