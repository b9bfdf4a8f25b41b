package remote_test

import (
	"archive/tar"
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

// textLayer writes a layer tar of one file of size bytes of text-like
// content (words, as source code and build output are), different for
// each seed, and returns its path.
func textLayer(tb testing.TB, dir string, seed int64, size int) string {
	tb.Helper()
	words := []string{"func", "return", "package", "import", "layer", "image", "build", "const", "var", "if",
		"else", "for", "range", "error", "nil", "string", "int", "struct", "interface", "type"}
	r := rand.New(rand.NewSource(seed))
	path := filepath.Join(dir, fmt.Sprintf("text-%d.tar", seed))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	if err := tw.WriteHeader(&tar.Header{Name: "app/generated.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
		tb.Fatal(err)
	}
	line := make([]byte, 0, 128)
	for written := 0; written < size; {
		line = line[:0]
		for len(line) < 60 {
			line = append(line, words[r.Intn(len(words))]...)
			line = append(line, ' ')
		}
		line = append(line, '\n')
		if n := size - written; n < len(line) {
			line = line[:n]
		}
		if _, err := tw.Write(line); err != nil {
			tb.Fatal(err)
		}
		written += len(line)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkPush is the lifecycle-shaped registry rebuild: a base of 3×20 MB
// layers and a previous image of the base plus 5×8 MB app layers are in a
// real registry; the new image reuses 4 app layers, adds one new 50 MB
// layer of text-like content, sets a label and is pushed. Each round's new
// layer is new to the registry. Measured in the same run:
//   - ours: remote.NewImage + ReuseLayer×4 + AddLayer + SetLabel + Save;
//   - crane way: tarball.LayerFromFile + mutate.AppendLayers + remote.Write,
//     as `crane append` does;
//   - one pass: gzip the new layer while uploading it (stream.NewLayer +
//     remote.WriteLayer), the physical limit.
func BenchmarkPush(b *testing.B) {
	baseSize, appSize, newSize := 20<<20, 8<<20, 50<<20
	if os.Getenv("IMGUTIL_BENCH_SMALL") != "" {
		baseSize, appSize, newSize = baseSize/10, appSize/10, newSize/10
	}
	reg := testhelpers.StartRegistry(b)
	kc := reg.Keychain()
	dir := b.TempDir()
	opts := []ggcrremote.Option{ggcrremote.WithAuthFromKeychain(kc)}

	var base = empty.Image
	for range 3 {
		p, _ := testhelpers.RandomLayerFile(b, baseSize)
		l, err := tarball.LayerFromFile(p)
		must(b, err)
		base, err = mutate.AppendLayers(base, l)
		must(b, err)
	}
	runRef := reg.Put(b, "bench/run:latest", base)
	prev := base
	var appIDs []string
	for range 5 {
		p, diffID := testhelpers.RandomLayerFile(b, appSize)
		l, err := tarball.LayerFromFile(p)
		must(b, err)
		prev, err = mutate.AppendLayers(prev, l)
		must(b, err)
		appIDs = append(appIDs, diffID)
	}
	prevRef := reg.Put(b, "bench/app:prev", prev)

	var ours, crane, onePass []time.Duration
	for round := range b.N {
		// Three new layers, one for each way, new to the registry.
		paths := make([]string, 3)
		for k := range paths {
			paths[k] = textLayer(b, dir, int64(round*3+k), newSize)
		}

		start := time.Now()
		img, err := remote.NewImage(reg.Repo("bench/app:latest"), kc, remote.FromBaseImage(runRef), remote.WithPreviousImage(prevRef))
		must(b, err)
		for _, id := range appIDs[:4] {
			must(b, img.ReuseLayer(id))
		}
		must(b, img.AddLayer(paths[0]))
		must(b, img.SetLabel("round", fmt.Sprint(round)))
		must(b, img.Save())
		ours = append(ours, time.Since(start))

		start = time.Now()
		craneWay(b, reg.Repo("bench/crane:latest"), runRef, prevRef, paths[1], round, opts)
		crane = append(crane, time.Since(start))

		start = time.Now()
		repo, err := name.NewRepository(reg.Repo("bench/onepass"))
		must(b, err)
		f, err := os.Open(paths[2])
		must(b, err)
		must(b, ggcrremote.WriteLayer(repo, stream.NewLayer(f), opts...))
		onePass = append(onePass, time.Since(start))

		for _, p := range paths {
			os.Remove(p)
		}
	}
	o, c, l := median(ours), median(crane), median(onePass)
	b.ReportMetric(o.Seconds(), "ours-s")
	b.ReportMetric(c.Seconds(), "crane-s")
	b.ReportMetric(l.Seconds(), "onepass-s")
	b.ReportMetric(float64(o)/float64(l), "ours/onepass")
	b.ReportMetric(float64(o)/float64(c), "ours/crane")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BENCH push ours=%v crane-way=%v one-pass=%v ours/one-pass=%.2fx ours/crane-way=%.2fx rounds=%d\n",
		o.Round(time.Millisecond), c.Round(time.Millisecond), l.Round(time.Millisecond),
		float64(o)/float64(l), float64(o)/float64(c), len(ours))
}

// craneWay appends the new layer at path to the run image with four app
// layers of the previous image and pushes it, as go-containerregistry's
// own append does.
func craneWay(b *testing.B, to, runRef, prevRef, path string, round int, opts []ggcrremote.Option) {
	b.Helper()
	runR, err := name.ParseReference(runRef)
	must(b, err)
	prevR, err := name.ParseReference(prevRef)
	must(b, err)
	run, err := ggcrremote.Image(runR, opts...)
	must(b, err)
	prev, err := ggcrremote.Image(prevR, opts...)
	must(b, err)
	prevLayers, err := prev.Layers()
	must(b, err)
	runLayers, err := run.Layers()
	must(b, err)
	l, err := tarball.LayerFromFile(path)
	must(b, err)
	img, err := mutate.AppendLayers(run, append(slices.Clone(prevLayers[len(runLayers):len(runLayers)+4]), l)...)
	must(b, err)
	cfg, err := img.ConfigFile()
	must(b, err)
	cfg = cfg.DeepCopy()
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	cfg.Config.Labels["round"] = fmt.Sprint(round)
	img, err = mutate.ConfigFile(img, cfg)
	must(b, err)
	ref, err := name.ParseReference(to)
	must(b, err)
	must(b, ggcrremote.Write(ref, img, opts...))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
