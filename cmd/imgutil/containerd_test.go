package main_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/testhelpers"
)

// TestContainerdTargets: containerd://[namespace/]name in every direction:
// a layout copied into a namespace, edited there, copied to another
// namespace and to a registry, inspected and exported, on each containerd
// IMGUTIL_CONTAINERD_HOSTS lists.
func TestContainerdTargets(t *testing.T) {
	hosts := os.Getenv("IMGUTIL_CONTAINERD_HOSTS")
	if hosts == "" {
		if os.Getenv("IMGUTIL_REQUIRE_DAEMON") != "" {
			t.Fatal("IMGUTIL_CONTAINERD_HOSTS lists no containerd (scripts/containerd.sh starts them)")
		}
		t.Skip("no containerd (scripts/containerd.sh starts them)")
	}
	reg := testhelpers.StartRegistry(t)
	dir := t.TempDir()
	src := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), src)
	for _, kv := range strings.Split(hosts, ",") {
		name, sock, _ := strings.Cut(kv, "=")
		t.Run(name, func(t *testing.T) {
			env := []string{"CONTAINERD_ADDRESS=" + sock}
			repo := "example.com/imgutil-cli/" + strings.ToLower(rand.Text()[:10])
			in := "containerd://imgutil-test/" + repo + ":1"
			ok(t, env, "copy", "oci:"+filepath.Join(dir, "src"), in)
			ok(t, env, "mutate", "--label", "edited=yes", in)
			k8s := "containerd://k8s.io/" + repo + ":2"
			ok(t, env, "copy", in, k8s)
			out := ok(t, env, "inspect", k8s)
			if !strings.Contains(out, `"edited": "yes"`) {
				t.Errorf("inspect of the copy in k8s.io lacks the label set before: %s", out)
			}
			ok(t, env, "copy", k8s, reg.Repo("cli/from-containerd:"+name))
			pushed := reg.Get(t, "cli/from-containerd:"+name)
			testhelpers.CheckImage(t, pushed)
			if got, want := testhelpers.DiffIDs(t, pushed), testhelpers.DiffIDs(t, src); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("pushed from containerd: layers %v, want %v", got, want)
			}
			tarPath := filepath.Join(t.TempDir(), "out.tar")
			ok(t, env, "export", "-o", tarPath, in)
			if fi, err := os.Stat(tarPath); err != nil || fi.Size() == 0 {
				t.Errorf("export from containerd wrote nothing: %v", err)
			}
		})
		t.Cleanup(func() {
			c, err := client.New(sock)
			if err != nil {
				return
			}
			defer c.Close()
			for _, ns := range []string{"imgutil-test", "k8s.io"} {
				ctx := namespaces.WithNamespace(context.Background(), ns)
				list, _ := c.ImageService().List(ctx)
				for _, img := range list {
					if strings.Contains(img.Name, "/imgutil-cli/") {
						_ = c.ImageService().Delete(ctx, img.Name)
					}
				}
			}
		})
	}
}
