package layout_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
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
// IMGUTIL_BENCH_SMALL=1: 200 MiB) with SaveFile, three ways, and reports
// each one's time against copying the same bytes into one file, and the
// peak RSS the export added (it streams: it must stay flat, under 100 MiB):
//   - saved: the image saved in a layout and opened again, its blobs known
//     to match their digests (hashed when written, unchanged since): copied
//     by the kernel and not read (against a plain copy);
//   - cold: the same image, its blobs touched since (their change time
//     moves, so they are checked again): every blob hashed against its
//     digest (goal: ≤ 1.25× a copy that hashes what it copies);
//   - added: the image with its layers just added from files, touched as
//     well: every byte written hashed against its diffID (against the
//     hashed copy too).
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
	var saves, colds, adds, limits, hashedLimits []time.Duration
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
	touch := func(paths []string) {
		for _, p := range paths {
			now := time.Now()
			mustB(b, os.Chtimes(p, now, now))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		saves = append(saves, export(saved))
		touch(layerBlobs)
		colds = append(colds, export(saved))
		touch(files)
		adds = append(adds, export(added))
		limits = append(limits, timed(func() string { return copyAll(b, layerBlobs, filepath.Join(dir, "copy.tar"), false) }))
		hashedLimits = append(hashedLimits, timed(func() string { return copyAll(b, layerBlobs, filepath.Join(dir, "copy.tar"), true) }))
	}
	b.StopTimer()
	s, c, a, l, hl := median(saves), median(colds), median(adds), median(limits), median(hashedLimits)
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(s)/float64(l), "saved-ratio")
	b.ReportMetric(float64(c)/float64(hl), "cold-ratio")
	b.ReportMetric(float64(a)/float64(hl), "added-ratio")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BENCH savefile %.1f GiB layout image: saved %v (%.2fx a plain copy, %v), its blobs touched %v (%.2fx a hashed copy, %v), added layers %v (%.2fx); peak RSS %.1f MiB; median of %d\n",
		float64(4*layerSize)/(1<<30), s.Round(time.Millisecond), float64(s)/float64(l), l.Round(time.Millisecond),
		c.Round(time.Millisecond), float64(c)/float64(hl), hl.Round(time.Millisecond),
		a.Round(time.Millisecond), float64(a)/float64(hl), float64(peak)/(1<<20), len(saves))
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

// copyAll copies the files at paths into one file out, as a program
// would: through a buffer, each byte also hashed with sha256 when hashed
// (checking blobs against their names); plain, the kernel copies them.
func copyAll(b *testing.B, paths []string, out string, hashed bool) string {
	w, err := os.Create(out)
	mustB(b, err)
	buf := make([]byte, 1<<20)
	for _, p := range paths {
		r, err := os.Open(p)
		mustB(b, err)
		if hashed {
			h := sha256.New()
			_, err = io.CopyBuffer(io.MultiWriter(w, h), r, buf)
			if err == nil && hex.EncodeToString(h.Sum(nil)) != filepath.Base(p) {
				b.Fatalf("blob %s does not match its name", p)
			}
		} else {
			_, err = io.Copy(w, r)
		}
		mustB(b, err)
		r.Close()
	}
	mustB(b, w.Close())
	return out
}
