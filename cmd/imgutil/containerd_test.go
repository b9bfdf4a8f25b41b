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

// TestContainerdTargets: containerd://[namespace//]name in every direction:
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
			in := "containerd://imgutil-test//" + repo + ":1"
			ok(t, env, "copy", "oci:"+filepath.Join(dir, "src"), in)
			ok(t, env, "mutate", "--label", "edited=yes", in)
			k8s := "containerd://k8s.io//" + repo + ":2"
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

// TestContainerdNames: a name is a name. The namespace is what comes
// before "//", else CONTAINERD_NAMESPACE, else "default"; the name is
// normalised as ctr and nerdctl do (docker.io/..., library/ for one part),
// so that no Docker Hub organisation or registry host is taken for a
// namespace.
func TestContainerdNames(t *testing.T) {
	hosts := os.Getenv("IMGUTIL_CONTAINERD_HOSTS")
	if hosts == "" {
		if os.Getenv("IMGUTIL_REQUIRE_DAEMON") != "" {
			t.Fatal("IMGUTIL_CONTAINERD_HOSTS lists no containerd (scripts/containerd.sh starts them)")
		}
		t.Skip("no containerd (scripts/containerd.sh starts them)")
	}
	dir := t.TempDir()
	testhelpers.LayoutPut(t, filepath.Join(dir, "src"), testhelpers.BusyboxImage(t, imgutil.OCITypes))
	for _, kv := range strings.Split(hosts, ",") {
		host, sock, _ := strings.Cut(kv, "=")
		t.Run(host, func(t *testing.T) {
			c, err := client.New(sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// An organisation of its own, so that a namespace made of it
			// would be this test's.
			org := "imgutil-org-" + strings.ToLower(rand.Text()[:8])
			env := []string{"CONTAINERD_ADDRESS=" + sock, "CONTAINERD_NAMESPACE=imgutil-test"}
			for _, tc := range []struct{ target, ns, stored string }{
				{"containerd://" + org + "/app:1", "imgutil-test", "docker.io/" + org + "/app:1"},
				{"containerd://" + org + ":2", "imgutil-test", "docker.io/library/" + org + ":2"},
				{"containerd://library/" + org + ":3", "imgutil-test", "docker.io/library/" + org + ":3"},
				{"containerd://docker.io/" + org + "/app:4", "imgutil-test", "docker.io/" + org + "/app:4"},
				{"containerd://localhost:5000/" + org + "/app:5", "imgutil-test", "localhost:5000/" + org + "/app:5"},
				{"containerd://k8s.io/" + org + ":6", "imgutil-test", "k8s.io/" + org + ":6"},
				{"containerd://k8s.io//" + org + "/app:7", "k8s.io", "docker.io/" + org + "/app:7"},
				{"containerd://moby//" + org + ":8", "moby", "docker.io/library/" + org + ":8"},
				{"containerd://default//example.com:443/" + org + "/app:9", "default", "example.com:443/" + org + "/app:9"},
			} {
				ok(t, env, "copy", "oci:"+filepath.Join(dir, "src"), tc.target)
				ctx := namespaces.WithNamespace(context.Background(), tc.ns)
				if _, err := c.ImageService().Get(ctx, tc.stored); err != nil {
					t.Errorf("%s: no %s in namespace %s: %v", tc.target, tc.stored, tc.ns, err)
				}
				out := ok(t, env, "inspect", tc.target)
				if !strings.Contains(out, "sha256:") {
					t.Errorf("inspect %s: %s", tc.target, out)
				}
				_ = c.ImageService().Delete(ctx, tc.stored)
			}
			nss, err := c.NamespaceService().List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range nss {
				if strings.HasPrefix(ns, "imgutil-org-") {
					t.Errorf("namespace %s was made of an image name", ns)
					_ = c.NamespaceService().Delete(context.Background(), ns)
				}
			}
			// A namespace containerd would refuse is a usage error, before
			// anything is read.
			if _, errOut, code := cli(t, env, "copy", "oci:"+filepath.Join(dir, "src"), "containerd://Bad_ns!//app:1"); code != 2 || !strings.Contains(errOut, `namespace "Bad_ns!"`) {
				t.Errorf("a bad namespace: exit %d, %s", code, errOut)
			}
		})
	}
}
