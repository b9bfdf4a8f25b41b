package containerd_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	ilayer "github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/testhelpers"
)

// lifecycleAppLayer is the size of the app layers of the lifecycle-shaped
// export, as local's BenchmarkLifecycleExport: four in a fresh export, one
// changed in a rebuild (IMGUTIL_BENCH_SMALL=1: a tenth).
var lifecycleAppLayer = benchSize(8 << 20)

// BenchmarkLifecycleExport does, per containerd, what the lifecycle
// exporter would do with this backend in a build container (a new process:
// a new client, empty caches): open the run image as base and the previous
// app image, reuse its layers, add the new ones, set labels and env, Save
// (new layers gzip-compressed, the default), then Identifier() and
// ManifestSize(). The run image (3 gzip layers of 50 MB) was imported with
// containerd's own importer (as `ctr images import`) and unpacked, as a
// pulled image is. A round is a fresh export (4 new layers of 8 MiB) then
// a rebuild on it (3 reused, 1 new); each is compared with its limit in
// the same run: exactly its new layers gzip-compressed by the client into
// the content store (at once) and applied onto the run image's snapshot,
// under a lease.
func BenchmarkLifecycleExport(b *testing.B) {
	b.Setenv("IMGUTIL_LAYER_CACHE", "off")
	ds := benchDaemons(b)
	// Three random layers of 50 MB, as BenchmarkRebuild's base.
	run := benchBase(b)
	for _, d := range ds {
		b.Run(d.name, func(b *testing.B) { benchLifecycleExport(b, d, run) })
	}
}

func benchLifecycleExport(b *testing.B, d daemon, run v1.Image) {
	const runName = "example.com/imgutil-bench/run:latest"
	put(b, d.client, testNamespace, runName, run)
	unpack(b, d.client, runName)
	cfg, err := run.ConfigFile()
	must(b, err)
	var runChain []digest.Digest
	for _, id := range cfg.RootFS.DiffIDs {
		runChain = append(runChain, digest.Digest(id.String()))
	}
	var fresh, rebuild, freshLimit, rebuildLimit []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		app := fmt.Sprintf("example.com/imgutil-bench/lifecycle-app:round-%d", i)
		var layers, ids []string
		for range 4 {
			p, id := testhelpers.RandomLayerFile(b, lifecycleAppLayer)
			layers, ids = append(layers, p), append(ids, id)
		}
		changed, changedID := testhelpers.RandomLayerFile(b, lifecycleAppLayer)
		b.StartTimer()

		fresh = append(fresh, lifecycleExport(b, d, runName, app, ids, layers, nil))
		rebuild = append(rebuild, lifecycleExport(b, d, runName, app, []string{changedID}, []string{changed}, ids[:3]))

		b.StopTimer()
		_ = d.client.ImageService().Delete(nsCtx(testNamespace), app)
		// The limits: layers as new to the store as ours were.
		var limitLayers []string
		for range 5 {
			p, _ := testhelpers.RandomLayerFile(b, lifecycleAppLayer)
			limitLayers = append(limitLayers, p)
		}
		freshLimit = append(freshLimit, writeAndApply(b, d.client, runChain, limitLayers[:4]))
		rebuildLimit = append(rebuildLimit, writeAndApply(b, d.client, runChain, limitLayers[4:]))
		b.StartTimer()
	}
	b.StopTimer()
	f, r, fl, rl := median(fresh), median(rebuild), median(freshLimit), median(rebuildLimit)
	b.ReportMetric(f.Seconds(), "fresh-s")
	b.ReportMetric(r.Seconds(), "rebuild-s")
	b.ReportMetric(float64(r)/float64(rl), "rebuild-ratio")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BENCH containerd-lifecycle-export %-34s fresh=%v (limit %v, %.2fx) rebuild=%v (limit %v, %.2fx) rounds=%d\n",
		b.Name(), f.Round(time.Millisecond), fl.Round(time.Millisecond), float64(f)/float64(fl),
		r.Round(time.Millisecond), rl.Round(time.Millisecond), float64(r)/float64(rl), len(fresh))
}

// lifecycleExport is one export as the lifecycle would make it with this
// backend, on a new client (a new process).
func lifecycleExport(b *testing.B, d daemon, runName, app string, ids, layers, reuse []string) time.Duration {
	start := time.Now()
	c, err := client.New(d.socket)
	must(b, err)
	defer c.Close()
	img, err := containerd.NewImage(app, c, containerd.WithNamespace(testNamespace),
		imgutil.FromBaseImage(runName), imgutil.WithPreviousImage(app), imgutil.WithHistory())
	must(b, err)
	for _, id := range reuse {
		must(b, img.ReuseLayer(id))
	}
	for j, p := range layers {
		must(b, img.AddLayerWithDiffIDAndHistory(p, ids[j], v1.History{CreatedBy: "buildpack layer"}))
	}
	must(b, img.SetLabel("io.buildpacks.lifecycle.metadata", fmt.Sprintf(`{"layers":%d}`, len(layers))))
	must(b, img.SetLabel("io.buildpacks.build.metadata", `{"processes":[]}`))
	must(b, img.SetEnv("CNB_LAYERS_DIR", "/layers"))
	must(b, img.SetWorkingDir("/workspace"))
	must(b, img.SetEntrypoint("/cnb/process/web"))
	must(b, img.Save())
	_, err = img.Identifier()
	must(b, err)
	_, err = img.ManifestSize()
	must(b, err)
	return time.Since(start)
}

// writeAndApply is the limit of an export that adds layers onto an
// unpacked image of diffIDs parents: the layer files gzip-compressed by
// the client into the content store (at once), then applied one on the
// other onto the parents' snapshot, under a lease; removed after.
func writeAndApply(b *testing.B, c *client.Client, parents []digest.Digest, paths []string) time.Duration {
	ctx := nsCtx(testNamespace)
	sn := c.SnapshotService(containerd.DefaultSnapshotter)
	start := time.Now()
	lctx, done, err := c.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	must(b, err)
	descs := make([]ocispec.Descriptor, len(paths))
	var g errgroup.Group
	for j, p := range paths {
		g.Go(func() error {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			zr := ilayer.Gzip(f)
			defer zr.Close()
			ref := "imgutil-bench-limit-" + testhelpers.RandString(8)
			w, err := content.OpenWriter(lctx, c.ContentStore(), content.WithRef(ref))
			if err != nil {
				return err
			}
			defer w.Close()
			n, err := io.Copy(w, zr)
			if err != nil {
				return err
			}
			if err := w.Commit(lctx, n, ""); err != nil {
				return err
			}
			descs[j] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: w.Digest(), Size: n}
			return nil
		})
	}
	must(b, g.Wait())
	parent := identity.ChainID(parents).String()
	var keys []string
	for _, desc := range descs {
		key := "imgutil-bench-" + testhelpers.RandString(8)
		mounts, err := sn.Prepare(lctx, key, parent)
		must(b, err)
		_, err = c.DiffService().Apply(lctx, desc, mounts)
		must(b, err)
		must(b, sn.Commit(lctx, key+"-committed", key))
		parent = key + "-committed"
		keys = append(keys, parent)
	}
	must(b, done(context.WithoutCancel(lctx)))
	took := time.Since(start)
	for j := len(keys) - 1; j >= 0; j-- {
		_ = sn.Remove(ctx, keys[j])
	}
	return took
}
