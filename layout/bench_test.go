package layout_test

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgbridge/imgutil/layout"
)

// BenchmarkSaveFileMemory exports a 2 GiB image (4 layers of 512 MiB;
// IMGUTIL_BENCH_SMALL=1: 200 MiB) with SaveFile and reports the peak RSS
// the export added (it streams: it must stay flat, under 100 MiB) and its
// time against a plain copy of the same bytes into one file.
func BenchmarkSaveFileMemory(b *testing.B) {
	layerSize := int64(512 << 20)
	if os.Getenv("IMGUTIL_BENCH_SMALL") != "" {
		layerSize = 50 << 20
	}
	dir := b.TempDir()
	img, err := layout.NewImage(filepath.Join(dir, "big"))
	mustB(b, err)
	var paths []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("layer-%d.tar", i))
		writeRandomLayer(b, p, layerSize, uint64(i))
		mustB(b, img.AddLayer(p))
		paths = append(paths, p)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resetPeakRSS(b)
		start := time.Now()
		out, err := img.SaveFile()
		mustB(b, err)
		took := time.Since(start)
		peak := peakRSS(b)
		mustB(b, os.Remove(out))

		b.StopTimer()
		start = time.Now()
		copyAll(b, paths, filepath.Join(dir, "copy.tar"))
		limit := time.Since(start)
		b.StartTimer()
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(took)/float64(limit), "ratio")
		b.ReportMetric(0, "ns/op")
		fmt.Printf("BENCH savefile %.1f GiB image: %v (plain copy %v, ratio %.2fx), peak RSS %.1f MiB\n",
			float64(4*layerSize)/(1<<30), took.Round(time.Millisecond), limit.Round(time.Millisecond),
			float64(took)/float64(limit), float64(peak)/(1<<20))
	}
}

func mustB(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// writeRandomLayer writes a layer tar holding one file of size
// pseudo-random bytes, streaming (memory stays small).
func writeRandomLayer(b *testing.B, path string, size int64, seed uint64) {
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

func copyAll(b *testing.B, paths []string, out string) {
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
	mustB(b, os.Remove(out))
}

// resetPeakRSS resets the kernel's peak-RSS mark of this process.
func resetPeakRSS(b *testing.B) {
	mustB(b, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o200))
}

// peakRSS is the peak resident set size (VmHWM) since the last reset.
func peakRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	mustB(b, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			mustB(b, err)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
