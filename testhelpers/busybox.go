package testhelpers

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
)

// busyboxApplets are the commands linked to busybox in the rootfs.
var busyboxApplets = []string{"sh", "ls", "cat", "echo", "env", "true", "false", "sleep", "id"}

// StaticBusybox returns the path of a statically linked busybox on this
// machine (Debian's busybox-static), or skips the test when there is none.
func StaticBusybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/busybox", "/bin/busybox"} {
		if isStatic(p) {
			return p
		}
	}
	if p, err := exec.LookPath("busybox"); err == nil && isStatic(p) {
		return p
	}
	t.Skip("no statically linked busybox here: apt-get install busybox-static")
	return ""
}

func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// BusyboxImage builds, offline, a runnable linux image of three layers: a
// rootfs with /usr/bin/busybox and its applets under /bin, an /etc layer,
// and a layer of generated files; with env, labels, a command and history.
// Its media types are mt (Docker or OCI).
func BusyboxImage(t testing.TB, mt imgutil.MediaTypes) v1.Image {
	t.Helper()
	bb := StaticBusybox(t)
	root := t.TempDir()
	usrBin := filepath.Join(root, "usr", "bin")
	mustDo(t, os.MkdirAll(usrBin, 0o755))
	mustDo(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	mustDo(t, os.MkdirAll(filepath.Join(root, "tmp"), 0o1777))
	data, err := os.ReadFile(bb)
	mustDo(t, err)
	mustDo(t, os.WriteFile(filepath.Join(usrBin, "busybox"), data, 0o755))
	for _, a := range busyboxApplets {
		mustDo(t, os.Symlink("/usr/bin/busybox", filepath.Join(root, "bin", a)))
	}
	rootfs := dirLayer(t, root)
	etc, _ := LayerFile(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
		"root/":      "",
	})
	gen, _ := RandomLayerFile(t, 64<<10)

	img := mutate.MediaType(empty.Image, mt.ManifestType())
	img = mutate.ConfigMediaType(img, mt.ConfigType())
	var adds []mutate.Addendum
	for i, p := range []string{rootfs, etc, gen} {
		l, err := tarball.LayerFromFile(p, tarball.WithMediaType(mt.LayerType()))
		mustDo(t, err)
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: mt.LayerType(), History: v1.History{
			CreatedBy: []string{"rootfs", "etc", "generated"}[i], Created: v1.Time{Time: imgutil.NormalizedDateTime},
		}})
	}
	img, err = mutate.Append(img, adds...)
	mustDo(t, err)
	cfg, err := img.ConfigFile()
	mustDo(t, err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: imgutil.NormalizedDateTime}
	cfg.Config.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Labels = map[string]string{"io.imgbridge.fixture": "busybox"}
	img, err = mutate.ConfigFile(img, cfg)
	mustDo(t, err)
	return img
}

func dirLayer(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(p)
	mustDo(t, err)
	mustDo(t, layer.WriteDir(f, dir, "", imgutil.NormalizedDateTime))
	mustDo(t, f.Close())
	return p
}
