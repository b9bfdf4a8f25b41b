// Command imgutil-demo runs the library's main job on an embedded default
// that needs nothing installed: it builds an app image onto a generated base
// in an OCI layout under a temp dir, rebuilds it reusing the unchanged layer
// of the previous build, and exports it with SaveFile. When a Docker daemon
// answers, it also loads the export into it.
//
// Usage: go run ./cmd/imgutil-demo [-keep]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/fixture"
	"github.com/imgbridge/imgutil/internal/jsonstream"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
)

func main() {
	keep := flag.Bool("keep", false, "keep the temp directory and the exported tar")
	flag.Parse()
	if err := run(*keep); err != nil {
		fmt.Fprintln(os.Stderr, "imgutil-demo:", err)
		os.Exit(1)
	}
}

func run(keep bool) error {
	work, err := os.MkdirTemp("", "imgutil-demo-*")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	fmt.Println("work dir:", work)

	// 1. A base image, generated here (busybox-static when installed).
	bb := fixture.StaticBusybox()
	base, err := fixture.BaseImage(filepath.Join(work, "src", "base"), bb, map[string]string{"etc/motd": "hello from the demo base\n"}, imgutil.OCITypes)
	if err != nil {
		return fmt.Errorf("building base: %w", err)
	}
	basePath := filepath.Join(work, "layouts", "base")
	baseImg, err := layout.NewImage(basePath, layout.FromBaseImageInstance(base), layout.WithHistory())
	if err != nil {
		return err
	}
	if err := baseImg.Save(); err != nil {
		return fmt.Errorf("saving base: %w", err)
	}
	fmt.Printf("base:    %s (busybox: %s)\n", basePath, orNone(bb))

	// 2. First build: base + dependencies layer + code layer.
	appPath := filepath.Join(work, "layouts", "app")
	deps := writeLayer(work, "deps", map[string]string{"app/deps/lib.txt": "dependency v1\n"})
	codeV1 := writeLayer(work, "code-v1", map[string]string{"app/main.sh": "echo v1\n"})
	start := time.Now()
	if err := build(appPath, basePath, "", deps, codeV1); err != nil {
		return fmt.Errorf("first build: %w", err)
	}
	fmt.Printf("build 1: %s in %s\n", describe(appPath), time.Since(start).Round(time.Millisecond))

	// 3. Rebuild: the dependencies did not change, the code did.
	codeV2 := writeLayer(work, "code-v2", map[string]string{"app/main.sh": "echo v2\n"})
	before := countBlobs(appPath)
	start = time.Now()
	if err := build(appPath, basePath, appPath, deps, codeV2); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Printf("build 2: %s in %s; %d new blob(s) written\n", describe(appPath), time.Since(start).Round(time.Millisecond), countBlobs(appPath)-before)

	// 4. Export for `docker load`.
	img, err := layout.NewImage(filepath.Join(work, "layouts", "export"), layout.FromBaseImagePath(appPath))
	if err != nil {
		return err
	}
	if err := img.AnnotateRefName("imgutil-demo/app:latest"); err != nil {
		return err
	}
	start = time.Now()
	file, err := img.SaveFile()
	if err != nil {
		return fmt.Errorf("exporting: %w", err)
	}
	if !keep {
		defer os.Remove(file)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	fmt.Printf("export:  %s (%d bytes) in %s\n", file, fi.Size(), time.Since(start).Round(time.Millisecond))
	return loadIntoDaemon(file, writeLayer(work, "code-v3", map[string]string{"app/main.sh": "echo v3\n"}))
}

// build saves to appPath an image of the base plus the deps and code
// layers, reusing from previous any layer it already has.
func build(appPath, basePath, previous string, deps, code layerFile) error {
	ops := []imgutil.ImageOption{layout.FromBaseImagePath(basePath), layout.WithHistory()}
	if previous != "" {
		ops = append(ops, layout.WithPreviousImage(previous))
	}
	img, err := layout.NewImage(appPath, ops...)
	if err != nil {
		return err
	}
	for _, l := range []layerFile{deps, code} {
		has, err := img.PreviousImageHasLayer(l.diffID)
		if err != nil {
			return err
		}
		if err := img.AddOrReuseLayerWithHistory(l.path, l.diffID, v1.History{CreatedBy: "demo: " + l.name}); err != nil {
			return err
		}
		verb := "added "
		if has {
			verb = "reused"
		}
		fmt.Printf("  %s %-8s %s\n", verb, l.name, l.diffID[:19])
	}
	for k, v := range map[string]string{"io.imgbridge.demo": "true"} {
		if err := img.SetLabel(k, v); err != nil {
			return err
		}
	}
	if err := img.SetEntrypoint("/bin/sh", "/app/main.sh"); err != nil {
		return err
	}
	return img.Save()
}

type layerFile struct{ name, path, diffID string }

func writeLayer(work, name string, files map[string]string) layerFile {
	dir := filepath.Join(work, "src", name)
	out := filepath.Join(work, "src", name+".tar")
	if err := fixture.Files(dir, files); err != nil {
		panic(err)
	}
	if err := fixture.LayerFromDir(dir, out); err != nil {
		panic(err)
	}
	info, err := layer.ScanFile(out)
	if err != nil {
		panic(err)
	}
	return layerFile{name: name, path: out, diffID: info.DiffID.String()}
}

func describe(path string) string {
	img, err := layout.NewImage(path+"-view", layout.FromBaseImagePath(path))
	if err != nil {
		return err.Error()
	}
	id, err := img.Digest()
	if err != nil {
		return err.Error()
	}
	cfg, _ := img.ConfigFile()
	return fmt.Sprintf("%s, %d layers", id.String()[:19], len(cfg.RootFS.DiffIDs))
}

func countBlobs(layoutPath string) int {
	entries, _ := os.ReadDir(filepath.Join(layoutPath, "blobs", "sha256"))
	return len(entries)
}

func orNone(s string) string {
	if s == "" {
		return "none, a placeholder rootfs"
	}
	return s
}

// loadIntoDaemon loads the export into the Docker daemon, if one answers,
// then rebuilds on it with one more layer and shows what was sent.
func loadIntoDaemon(file string, next layerFile) error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		fmt.Println("daemon:  none configured; skipping the daemon steps")
		return nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = cli.Ping(ctx, client.PingOptions{})
	cancel()
	if err != nil {
		fmt.Println("daemon:  none answers; skipping the daemon steps (scripts/dockerd.sh starts one)")
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	res, err := cli.ImageLoad(context.Background(), f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	defer res.Close()
	lines, err := jsonstream.Read(res)
	if err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	fmt.Printf("daemon:  docker load of the export: %v in %s\n", jsonstream.LoadedImages(lines), time.Since(start).Round(time.Millisecond))

	counting := &countingClient{Client: cli}
	start = time.Now()
	img, err := local.NewImage("imgutil-demo/app:rebuilt", counting, local.FromBaseImage("imgutil-demo/app:latest"), local.WithHistory())
	if err != nil {
		return err
	}
	defer func() { _ = img.Close() }()
	if err := img.AddLayerWithDiffIDAndHistory(next.path, next.diffID, v1.History{CreatedBy: "demo: " + next.name}); err != nil {
		return err
	}
	if err := img.Save(); err != nil {
		return fmt.Errorf("saving to the daemon: %w", err)
	}
	id, err := img.Identifier()
	if err != nil {
		return err
	}
	fi, err := os.Stat(next.path)
	if err != nil {
		return err
	}
	fmt.Printf("daemon:  rebuilt imgutil-demo/app:rebuilt (%s) in %s: sent %d bytes for a new layer of %d; the base layers stayed in the daemon\n",
		id.String()[:12], time.Since(start).Round(time.Millisecond), counting.sent.Load(), fi.Size())
	return nil
}

// countingClient counts the bytes sent to the daemon's image load.
type countingClient struct {
	*client.Client
	sent atomic.Int64
}

func (c *countingClient) ImageLoad(ctx context.Context, r io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	return c.Client.ImageLoad(ctx, countingReader{r: r, n: &c.sent}, opts...)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
