package layout_test

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

// BenchmarkSaveFileMemory exports a 2 GiB image (4 layers of 512 MiB;
// IMGUTIL_BENCH_SMALL=1: 200 MiB) with SaveFile, two ways, and reports
// each one's time against a plain copy of the same bytes into one file
// (the limit: the kernel copying files), and the peak RSS the export added
// (it streams: it must stay flat, under 100 MiB):
//   - saved: the image saved in a layout and opened again; its blobs are
//     copied as they are, trusted by their digest names (goal: ≤ 1.25×);
//   - added: the image with its layers just added from files, which may
//     have changed since: every byte written is hashed against its diffID
//     (sha256 bounds it: about 1.6 GB/s a core here).
//
// Dirty pages are flushed (sync) before each timed export, so one run's
// write-back does not land on the next.
func BenchmarkSaveFileMemory(b *testing.B) {
	layerSize := int64(512 << 20)
	if os.Getenv("IMGUTIL_BENCH_SMALL") != "" {
		layerSize = 50 << 20
	}
	dir := b.TempDir()
	added, err := layout.NewImage(filepath.Join(dir, "big"))
	mustB(b, err)
	var files []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("layer-%d.tar", i))
		writeRandomLayer(b, p, layerSize, uint64(i))
		mustB(b, added.AddLayer(p))
		files = append(files, p)
	}
	savedPath := filepath.Join(dir, "saved")
	mustB(b, added.SaveAs(savedPath))
	saved, err := layout.NewImage(savedPath, layout.FromBaseImagePath(savedPath))
	mustB(b, err)
	blobs, err := filepath.Glob(filepath.Join(savedPath, "blobs", "sha256", "*"))
	mustB(b, err)
	var layerBlobs []string
	for _, p := range blobs {
		if fi, err := os.Stat(p); err == nil && fi.Size() >= layerSize {
			layerBlobs = append(layerBlobs, p)
		}
	}

	// Each part is timed from a clean page cache state (dirty pages
	// flushed) to its file complete; removing the file is not timed.
	timed := func(f func() string) time.Duration {
		syncAll()
		start := time.Now()
		out := f()
		took := time.Since(start)
		mustB(b, os.Remove(out))
		return took
	}
	var saves, adds, limits []time.Duration
	var peak int64
	export := func(img *layout.Image) time.Duration {
		testhelpers.ResetPeakRSS(b)
		took := timed(func() string {
			out, err := img.SaveFile()
			mustB(b, err)
			return out
		})
		peak = max(peak, testhelpers.PeakRSS(b))
		return took
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		saves = append(saves, export(saved))
		// Touched (their change time moves): the files are hashed again, as
		// files just added are.
		for _, p := range files {
			now := time.Now()
			mustB(b, os.Chtimes(p, now, now))
		}
		adds = append(adds, export(added))
		limits = append(limits, timed(func() string { return copyAll(b, layerBlobs, filepath.Join(dir, "copy.tar")) }))
	}
	b.StopTimer()
	s, a, l := median(saves), median(adds), median(limits)
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(s)/float64(l), "saved-ratio")
	b.ReportMetric(float64(a)/float64(l), "added-ratio")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BENCH savefile %.1f GiB layout image: saved %v (%.2fx), added layers %v (%.2fx), plain copy %v; peak RSS %.1f MiB; median of %d\n",
		float64(4*layerSize)/(1<<30), s.Round(time.Millisecond), float64(s)/float64(l),
		a.Round(time.Millisecond), float64(a)/float64(l), l.Round(time.Millisecond), float64(peak)/(1<<20), len(saves))
}

func median(ds []time.Duration) time.Duration {
	c := slices.Clone(ds)
	slices.Sort(c)
	return c[len(c)/2]
}

func mustB(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// writeRandomLayer writes a layer tar holding one file of size
// pseudo-random bytes, streaming (memory stays small).
func writeRandomLayer(b testing.TB, path string, size int64, seed uint64) {
	f, err := os.Create(path)
	mustB(b, err)
	defer f.Close()
	tw := tar.NewWriter(f)
	mustB(b, tw.WriteHeader(&tar.Header{Name: "data", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}))
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	_, err = io.CopyN(tw, rng, size)
	mustB(b, err)
	mustB(b, tw.Close())
}

func copyAll(b *testing.B, paths []string, out string) string {
	w, err := os.Create(out)
	mustB(b, err)
	for _, p := range paths {
		r, err := os.Open(p)
		mustB(b, err)
		_, err = io.Copy(w, r)
		mustB(b, err)
		r.Close()
	}
	mustB(b, w.Close())
	return out
}
