package containerd_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	moby "github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	ilayer "github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/testhelpers"
)

// Sizes of the rebuild (IMGUTIL_BENCH_SMALL=1: a tenth).
var (
	benchBaseLayer = benchSize(50 << 20) // three of them: a 150 MB base
	benchAppLayer  = benchSize(4 << 20)  // three app layers of the previous image
	benchNewLayer  = benchSize(10 << 20) // the new layer of each rebuild
)

func benchSize(n int) int {
	if os.Getenv("IMGUTIL_BENCH_SMALL") != "" {
		return n / 10
	}
	return n
}

// BenchmarkRebuild rebuilds an app image straight into containerd (a base
// of 150 MB and three app layers reused, one new layer of 10 MiB), against
// the physical limit (the new layer alone written into the content store
// and applied onto its parent snapshot with containerd's client), and
// against what users do today: the same image in a Docker daemon, `docker
// save` piped into containerd's import, then unpacked (as `ctr images
// import` does).
func BenchmarkRebuild(b *testing.B) {
	ds := benchDaemons(b)
	base := benchBase(b)
	for _, d := range ds {
		b.Run(d.name, func(b *testing.B) { benchRebuild(b, d.client, base) })
	}
}

// benchDaemons are the containerds IMGUTIL_CONTAINERD_HOSTS lists; none:
// the benchmark skips.
func benchDaemons(b *testing.B) []daemon {
	var ds []daemon
	for _, kv := range strings.Split(os.Getenv("IMGUTIL_CONTAINERD_HOSTS"), ",") {
		if name, sock, ok := strings.Cut(kv, "="); ok {
			c, err := client.New(sock)
			must(b, err)
			b.Cleanup(func() { c.Close() })
			ds = append(ds, daemon{name: name, socket: sock, client: c})
		}
	}
	if len(ds) == 0 {
		b.Skip("no containerd (scripts/containerd.sh)")
	}
	return ds
}

// benchBase is an image of three random layers.
func benchBase(b *testing.B) v1.Image {
	img := empty.Image
	for range 3 {
		p, _ := testhelpers.RandomLayerFile(b, benchBaseLayer)
		l, err := tarball.LayerFromFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			b.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		b.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		b.Fatal(err)
	}
	return img
}

func benchRebuild(b *testing.B, c *client.Client, base v1.Image) {
	ctx := nsCtx(testNamespace)
	baseName := "example.com/imgutil-bench/base:latest"
	put(b, c, testNamespace, baseName, base)
	unpack(b, c, baseName)
	prev := "example.com/imgutil-bench/app:latest"
	first, err := containerd.NewImage(prev, c, containerd.WithNamespace(testNamespace), imgutil.FromBaseImage(baseName))
	must(b, err)
	var ids []string
	for range 3 {
		p, id := testhelpers.RandomLayerFile(b, benchAppLayer)
		must(b, first.AddLayerWithDiffID(p, id))
		ids = append(ids, id)
	}
	must(b, first.Save())
	docker := dockerForImport(b)

	var ours, plains, limits, gzLimits, imports []time.Duration
	rebuild := func(i int, ops ...imgutil.ImageOption) (*containerd.Image, time.Duration) {
		b.StopTimer()
		p, id := testhelpers.RandomLayerFile(b, benchNewLayer)
		b.StartTimer()
		start := time.Now()
		img, err := containerd.NewImage(prev, c, append([]imgutil.ImageOption{containerd.WithNamespace(testNamespace), imgutil.FromBaseImage(baseName), imgutil.WithPreviousImage(prev)}, ops...)...)
		must(b, err)
		for _, reused := range ids {
			must(b, img.ReuseLayer(reused))
		}
		must(b, img.AddLayerWithDiffID(p, id))
		must(b, img.SetLabel("round", fmt.Sprint(i)))
		must(b, img.Save())
		return img, time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		// The default: the new layer stored gzip-compressed.
		img, took := rebuild(i)
		ours = append(ours, took)
		_, took = rebuild(i, containerd.WithCompression(containerd.Uncompressed))
		plains = append(plains, took)
		b.StopTimer()
		// The limits write and apply a layer of their own, as new to the
		// store as ours was: as it is, and gzip-compressed by the client.
		lp, lid := testhelpers.RandomLayerFile(b, benchNewLayer)
		limits = append(limits, applyOneLayer(b, c, ctx, img, lp, lid, false))
		lp, lid = testhelpers.RandomLayerFile(b, benchNewLayer)
		gzLimits = append(gzLimits, applyOneLayer(b, c, ctx, img, lp, lid, true))
		if docker != nil {
			imports = append(imports, saveAndImport(b, c, docker, img))
		}
		b.StartTimer()
	}
	b.StopTimer()
	o, gl, pl, l := median(ours), median(gzLimits), median(plains), median(limits)
	b.ReportMetric(o.Seconds(), "rebuild-s")
	b.ReportMetric(float64(o)/float64(gl), "ratio")
	b.ReportMetric(float64(pl)/float64(l), "uncompressed-ratio")
	b.ReportMetric(0, "ns/op")
	line := fmt.Sprintf("BENCH containerd-rebuild %-26s gzip: ours=%v limit=%v (%.2fx); uncompressed: ours=%v limit=%v (%.2fx)", b.Name(),
		o.Round(time.Millisecond), gl.Round(time.Millisecond), float64(o)/float64(gl),
		pl.Round(time.Millisecond), l.Round(time.Millisecond), float64(pl)/float64(l))
	if len(imports) > 0 {
		m := median(imports)
		line += fmt.Sprintf(" docker-save|import=%v (ours %.1fx faster)", m.Round(time.Millisecond), float64(m)/float64(o))
	}
	fmt.Printf("%s rounds=%d\n", line, len(ours))
}

// applyOneLayer is the physical limit of a rebuild: the new layer written
// into the content store (gzip-compressed by the client on the way, with
// the compressor saves use, when gz) and applied onto the snapshot of the
// layers under it, with the client alone, under a lease; removed after.
func applyOneLayer(b *testing.B, c *client.Client, ctx context.Context, img *containerd.Image, path, diffID string, gz bool) time.Duration {
	cfg, err := img.ConfigFile()
	must(b, err)
	var parents []digest.Digest
	for _, d := range cfg.RootFS.DiffIDs[:len(cfg.RootFS.DiffIDs)-1] {
		parents = append(parents, digest.Digest(d.String()))
	}
	sn := c.SnapshotService(containerd.DefaultSnapshotter)
	key := "imgutil-bench-" + strings.ToLower(rand.Text()[:8])

	// A lease, as any client writing content needs (else garbage
	// collection may take the blob before anything references it).
	start := time.Now()
	lctx, done, err := c.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	must(b, err)
	f, err := os.Open(path)
	must(b, err)
	var desc ocispec.Descriptor
	if gz {
		w, err := content.OpenWriter(lctx, c.ContentStore(), content.WithRef(key))
		must(b, err)
		zr := ilayer.Gzip(f)
		n, err := io.Copy(w, zr)
		must(b, err)
		must(b, w.Commit(lctx, n, ""))
		desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: w.Digest(), Size: n}
		_ = w.Close()
		_ = zr.Close()
	} else {
		fi, err := f.Stat()
		must(b, err)
		desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.Digest(diffID), Size: fi.Size()}
		must(b, content.WriteBlob(lctx, c.ContentStore(), key, f, desc))
		f.Close()
	}
	mounts, err := sn.Prepare(lctx, key, identity.ChainID(parents).String())
	must(b, err)
	_, err = c.DiffService().Apply(lctx, desc, mounts)
	must(b, err)
	must(b, sn.Commit(lctx, key+"-committed", key))
	must(b, done(context.WithoutCancel(lctx)))
	d := time.Since(start)
	_ = sn.Remove(ctx, key+"-committed")
	return d
}

// dockerForImport is the Docker daemon the save-and-import way starts
// from (DOCKER_HOST), nil when none answers.
func dockerForImport(b *testing.B) *moby.Client {
	if os.Getenv("DOCKER_HOST") == "" {
		return nil
	}
	cli, err := moby.New(moby.FromEnv)
	if err != nil {
		return nil
	}
	if _, err := cli.Ping(context.Background(), moby.PingOptions{}); err != nil {
		return nil
	}
	b.Cleanup(func() { cli.Close() })
	return cli
}

// saveAndImport is what users do today: the image (loaded into the Docker
// daemon first, untimed) exported with `docker save`, piped into
// containerd's import, and unpacked.
func saveAndImport(b *testing.B, c *client.Client, docker *moby.Client, img *containerd.Image) time.Duration {
	ref := "imgutil-bench/imported:latest"
	path, err := img.SaveFile()
	must(b, err)
	defer os.Remove(path)
	f, err := os.Open(path)
	must(b, err)
	res, err := docker.ImageLoad(context.Background(), f, moby.ImageLoadWithQuiet(true))
	must(b, err)
	_, _ = io.Copy(io.Discard, res)
	res.Close()
	f.Close()
	defer func() { _, _ = docker.ImageRemove(context.Background(), img.Name(), moby.ImageRemoveOptions{}) }()
	ctx := nsCtx(testNamespace)

	start := time.Now()
	rc, err := docker.ImageSave(context.Background(), []string{img.Name()})
	must(b, err)
	imgs, err := c.Import(ctx, rc, client.WithImageRefTranslator(func(string) string { return ref }))
	rc.Close()
	must(b, err)
	for _, i := range imgs {
		must(b, client.NewImage(c, i).Unpack(ctx, containerd.DefaultSnapshotter))
	}
	d := time.Since(start)
	_ = c.ImageService().Delete(ctx, ref)
	return d
}

func unpack(b *testing.B, c *client.Client, name string) {
	ctx := nsCtx(testNamespace)
	rec, err := c.ImageService().Get(ctx, name)
	must(b, err)
	must(b, client.NewImage(c, rec).Unpack(ctx, containerd.DefaultSnapshotter))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	return s[len(s)/2]
}
