package layout_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
)

// writeTar writes a one-file layer tar and returns its path.
func writeTar(dir, name, content string) string {
	path := filepath.Join(dir, name+".tar")
	f, _ := os.Create(path)
	defer f.Close()
	tw := tar.NewWriter(f)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	return path
}

// Build an image, then rebuild it reusing a layer of the first build.
func ExampleNewImage() {
	dir, _ := os.MkdirTemp("", "imgutil-example-*")
	defer os.RemoveAll(dir)
	app := filepath.Join(dir, "app")

	first, _ := layout.NewImage(app)
	_ = first.AddLayer(writeTar(dir, "deps", "dependencies"))
	_ = first.SetLabel("build", "1")
	if err := first.Save(); err != nil {
		fmt.Println(err)
		return
	}
	deps, _ := first.TopLayer()

	second, _ := layout.NewImage(app, layout.WithPreviousImage(app))
	_ = second.ReuseLayer(deps)
	_ = second.AddLayer(writeTar(dir, "code", "code"))
	_ = second.SetLabel("build", "2")
	if err := second.Save(); err != nil {
		fmt.Println(err)
		return
	}
	reopened, _ := layout.NewImage(filepath.Join(dir, "view"), layout.FromBaseImagePath(app))
	build, _ := reopened.Label("build")
	cfg, _ := reopened.ConfigFile()
	fmt.Println("build", build, "has", len(cfg.RootFS.DiffIDs), "layers")

	err := second.ReuseLayer("sha256:0000000000000000000000000000000000000000000000000000000000000000")
	var notFound imgutil.ErrLayerNotFound
	fmt.Println("reuse of a missing layer:", errors.As(err, &notFound))
	// Output:
	// build 2 has 2 layers
	// reuse of a missing layer: true
}
