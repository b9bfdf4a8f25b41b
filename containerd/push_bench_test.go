package containerd_test

import (
	"archive/tar"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gname "github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/testhelpers"
)

// BenchmarkPushedByCtr pushes an image saved here (busybox and a new layer
// of source files: Go's own net and crypto packages, 17 MB) with containerd's own
// `ctr images push` to a registry on this machine, each round to a new
// repository (every blob uploaded), against the limit: the same blobs
// uploaded by go-containerregistry's remote.Write from memory. Also the
// same image saved with WithCompression(Uncompressed), as this backend
// stored new layers before gzip was its default, pushed by ctr: what the
// compression saves in bytes and time.
func BenchmarkPushedByCtr(b *testing.B) {
	ctr, err := exec.LookPath("ctr")
	if err != nil {
		b.Skip("no ctr")
	}
	ds := benchDaemons(b)
	reg := testhelpers.StartRegistry(b)
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skipf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(out))
	layerPath := sourcesLayer(b, filepath.Join(root, "src", "net"), filepath.Join(root, "src", "crypto"))
	for _, d := range ds {
		b.Run(d.name, func(b *testing.B) { benchPushedByCtr(b, d, reg, ctr, layerPath) })
	}
}

func benchPushedByCtr(b *testing.B, d daemon, reg *testhelpers.Registry, ctr, layerPath string) {
	c := d.client
	base := "example.com/imgutil-bench/push-base:latest"
	put(b, c, testNamespace, base, testhelpers.BusyboxImage(b, imgutil.OCITypes))
	save := func(name string, ops ...imgutil.ImageOption) v1.Image {
		img, err := containerd.NewImage(name, c, append([]imgutil.ImageOption{containerd.WithNamespace(testNamespace), imgutil.FromBaseImage(base)}, ops...)...)
		must(b, err)
		must(b, img.AddLayer(layerPath))
		must(b, img.Save())
		return read(b, c, testNamespace, name)
	}
	gzName, plainName := "example.com/imgutil-bench/push-gzip:latest", "example.com/imgutil-bench/push-plain:latest"
	b.Cleanup(func() {
		for _, n := range []string{base, gzName, plainName} {
			_ = c.ImageService().Delete(nsCtx(testNamespace), n)
		}
	})
	gzImg := save(gzName)
	save(plainName, containerd.WithCompression(containerd.Uncompressed))
	push := func(local, repo string) time.Duration {
		start := time.Now()
		out, err := exec.Command(ctr, "--address", d.socket, "-n", testNamespace, "images", "push", "--plain-http", reg.Repo(repo), local).CombinedOutput()
		if err != nil {
			b.Fatalf("ctr images push: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	var ours, plains, limits []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Ours and the limit in turns, each to a repository of its own.
		ours = append(ours, push(gzName, fmt.Sprintf("push/%s-gzip-%d:latest", d.name, i)))
		ref, err := gname.ParseReference(reg.Repo(fmt.Sprintf("push/%s-limit-%d:latest", d.name, i)))
		must(b, err)
		start := time.Now()
		must(b, remote.Write(ref, gzImg))
		limits = append(limits, time.Since(start))
		plains = append(plains, push(plainName, fmt.Sprintf("push/%s-plain-%d:latest", d.name, i)))
	}
	b.StopTimer()
	o, l, p := median(ours), median(limits), median(plains)
	b.ReportMetric(float64(o)/float64(l), "ratio")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BENCH containerd-push %-24s ctr push of ours (gzip): %v (%.1f MiB of layers) limit (remote.Write of the same blobs)=%v (%.2fx); saved uncompressed: %v (%.1f MiB) rounds=%d\n",
		b.Name(), o.Round(time.Millisecond), layersMiB(b, gzImg), l.Round(time.Millisecond), float64(o)/float64(l),
		p.Round(time.Millisecond), layersMiB(b, read(b, c, testNamespace, plainName)), len(ours))
}

// sourcesLayer is a layer file of the files under dirs (Go's sources: a
// layer that compresses as build output does), unique to this run.
func sourcesLayer(b *testing.B, dirs ...string) string {
	path := filepath.Join(b.TempDir(), "layer.tar")
	f, err := os.Create(path)
	must(b, err)
	tw := tar.NewWriter(f)
	for _, dir := range dirs {
		must(b, tw.AddFS(os.DirFS(dir)))
	}
	stamp := []byte(rand.Text())
	must(b, tw.WriteHeader(&tar.Header{Name: "stamp", Mode: 0o644, Size: int64(len(stamp)), Typeflag: tar.TypeReg}))
	_, err = tw.Write(stamp)
	must(b, err)
	must(b, tw.Close())
	must(b, f.Close())
	return path
}

// layersMiB is the size of img's layer blobs, as a push uploads them.
func layersMiB(b *testing.B, img v1.Image) float64 {
	m, err := img.Manifest()
	must(b, err)
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return float64(n) / (1 << 20)
}
