package testhelpers

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/fixture"
)

// StaticBusybox returns the path of a statically linked busybox on this
// machine (Debian's busybox-static), or skips the test when there is none.
func StaticBusybox(t testing.TB) string {
	t.Helper()
	p := fixture.StaticBusybox()
	if p == "" {
		if os.Getenv(RequireDaemonEnv) != "" {
			t.Fatalf("no statically linked busybox here and %s is set: apt-get install busybox-static", RequireDaemonEnv)
		}
		t.Skip("skipped: no statically linked busybox here: apt-get install busybox-static")
	}
	return p
}

// BusyboxImage builds, offline, a runnable linux image of three layers: a
// rootfs with /usr/bin/busybox and its applets under /bin, an /etc layer,
// and a layer of generated random files (so two calls give two different
// top layers); with env, labels, a command and history. Its media types are
// mt (Docker or OCI).
func BusyboxImage(t testing.TB, mt imgutil.MediaTypes) v1.Image {
	t.Helper()
	bb := StaticBusybox(t)
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	img, err := fixture.BaseImage(filepath.Join(t.TempDir(), "base"), bb, map[string]string{"generated/data": string(random)}, mt)
	mustDo(t, err)
	return img
}
