package local_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// Sizes of the lifecycle-shaped export (IMGUTIL_BENCH_SMALL=1: a tenth).
var (
	runLayerSize   = benchSize(50 << 20) // three of them: the run image
	exportAppLayer = benchSize(8 << 20)  // four app layers in a fresh export, one changed in a rebuild
)

const runImageName = "imgutil-bench/run:latest"

// exportTimes are the medians of one daemon's lifecycle export rounds.
type exportTimes struct{ fresh, rebuild, freshLimit, rebuildLimit time.Duration }

// BenchmarkLifecycleExport does, per daemon, what the lifecycle exporter
// does in a build container (a new process, empty caches, ONE connection
// whose Close does nothing): open the run image as base and the previous
// app image, reuse its layers, add the new ones, set labels and env, Save,
// then Identifier() and ManifestSize() for the report. The run image (3
// layers of 50 MB) was loaded with a plain docker load. A round is a fresh
// export (4 new layers of 8 MiB) then a rebuild on it (3 reused, 1 new);
// each is compared with a bare load of exactly its new layers, in the same
// run. At the end the containerd store's times are compared with the
// classic store's of the same dockerd (moby v2).
func BenchmarkLifecycleExport(b *testing.B) {
	// Empty caches, as in a fresh build container.
	b.Setenv(local.ManifestCacheEnv, "off")
	// The run image, as a pulled image is stored, loaded into each daemon
	// with a plain load: never saved by us, so nothing of it is known to a
	// new process.
	path := gzipArchive(b, runImageName, 3, runLayerSize)
	results := map[string]exportTimes{}
	for _, d := range testhelpers.DockerDaemons(b) {
		testhelpers.DockerLoad(b, d.Client, path)
		testhelpers.DockerCleanup(b, d.Client, runImageName)
		b.Run(d.Name, func(b *testing.B) { results[d.Name] = benchLifecycleExport(b, d.Client) })
	}
	c, okc := results["moby-containerd"]
	k, okk := results["moby-classic"]
	if okc && okk {
		fmt.Printf("BENCH lifecycle-export containerd store / classic store (moby v2): fresh %.2fx rebuild %.2fx\n",
			float64(c.fresh)/float64(k.fresh), float64(c.rebuild)/float64(k.rebuild))
	}
}

func benchLifecycleExport(b *testing.B, cli *client.Client) exportTimes {
	var fresh, rebuild []exportRun
	var freshLimit, rebuildLimit []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		app := fmt.Sprintf("imgutil-bench/lifecycle-app:round-%d", i)
		testhelpers.DockerCleanup(b, cli, app)
		var layers, ids []string
		for range 4 {
			p, id := testhelpers.RandomLayerFile(b, exportAppLayer)
			layers, ids = append(layers, p), append(ids, id)
		}
		changed, changedID := testhelpers.RandomLayerFile(b, exportAppLayer)
		b.StartTimer()

		fresh = append(fresh, lifecycleExport(b, cli, app, ids, layers, nil))
		rebuild = append(rebuild, lifecycleExport(b, cli, app, []string{changedID}, []string{changed}, ids[:3]))

		b.StopTimer()
		freshLimit = append(freshLimit, bareLoad(b, cli, fmt.Sprintf("imgutil-bench/lifecycle-limit:fresh-%d", i), layers...))
		rebuildLimit = append(rebuildLimit, bareLoad(b, cli, fmt.Sprintf("imgutil-bench/lifecycle-limit:rebuild-%d", i), changed))
		b.StartTimer()
	}
	b.StopTimer()
	f, r := medianRun(fresh), medianRun(rebuild)
	t := exportTimes{f.total, r.total, median(freshLimit), median(rebuildLimit)}
	b.ReportMetric(t.fresh.Seconds(), "fresh-s")
	b.ReportMetric(t.rebuild.Seconds(), "rebuild-s")
	b.ReportMetric(float64(t.rebuild)/float64(t.rebuildLimit), "rebuild-ratio")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BENCH lifecycle-export %-28s fresh=%v (bare load %v, %.2fx; %s) rebuild=%v (bare load %v, %.2fx; %s) read-back=%.1fKiB rounds=%d\n",
		b.Name(), t.fresh.Round(time.Millisecond), t.freshLimit.Round(time.Millisecond), float64(t.fresh)/float64(t.freshLimit), f,
		t.rebuild.Round(time.Millisecond), t.rebuildLimit.Round(time.Millisecond), float64(t.rebuild)/float64(t.rebuildLimit), r,
		float64(max(f.read, r.read))/(1<<10), len(fresh))
	return t
}

// exportRun is what one export took: in all, in the daemon's loads (of
// exactly the blobs the image lacks, plus a probe's where one was needed),
// and the bytes sent to and read back from the daemon.
type exportRun struct {
	total, load time.Duration
	sent, read  int64
}

// String splits the time: the daemon's loads, and every other call (the
// inspects a save needs, naming) with the work done here.
func (r exportRun) String() string {
	return fmt.Sprintf("loads %v + other calls and ours %v, sent %.1fMiB", r.load.Round(time.Millisecond),
		(r.total - r.load).Round(time.Millisecond), float64(r.sent)/(1<<20))
}

// medianRun is the run of median total time.
func medianRun(runs []exportRun) exportRun {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b exportRun) int { return cmp.Compare(a.total, b.total) })
	return s[len(s)/2]
}

// lifecycleExport is one export as the lifecycle makes it, in a new Store
// on a new single connection.
func lifecycleExport(b *testing.B, cli *client.Client, app string, ids, layers, reuse []string) exportRun {
	counting := &countingClient{Client: testhelpers.NewLifecycleClient(b, cli.DaemonHost())}
	start := time.Now()
	img, err := local.NewImage(app, traced(counting), local.FromBaseImage(runImageName), local.WithPreviousImage(app), local.WithHistory())
	must2(b, err)
	for _, id := range reuse {
		must2(b, img.ReuseLayer(id))
	}
	for j, p := range layers {
		must2(b, img.AddLayerWithDiffIDAndHistory(p, ids[j], v1.History{CreatedBy: "buildpack layer"}))
	}
	must2(b, img.SetLabel("io.buildpacks.lifecycle.metadata", fmt.Sprintf(`{"layers":%d}`, len(layers))))
	must2(b, img.SetLabel("io.buildpacks.build.metadata", `{"processes":[]}`))
	must2(b, img.SetEnv("CNB_LAYERS_DIR", "/layers"))
	must2(b, img.SetWorkingDir("/workspace"))
	must2(b, img.SetEntrypoint("/cnb/process/web"))
	must2(b, img.Save())
	_, err = img.Identifier()
	must2(b, err)
	_, err = img.ManifestSize()
	must2(b, err)
	d := time.Since(start)
	must2(b, img.Close())
	return exportRun{total: d, load: time.Duration(counting.loadNanos.Load()), sent: counting.loadBytes.Load(), read: counting.readBytes.Load()}
}

// bareLoad times a plain load of an archive of exactly layers, named name
// (removed at the end of the benchmark).
func bareLoad(b *testing.B, cli *client.Client, name string, layers ...string) time.Duration {
	p := bareArchive(b, name, layers...)
	testhelpers.DockerCleanup(b, cli, name)
	return timeLoad(b, context.Background(), cli, p)
}

// countingBody counts what is read of a body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
