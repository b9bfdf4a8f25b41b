package local_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

// testCopyBetweenStores copies an image from a real registry into the
// daemon (its layers streamed from the registry into the load) and back
// from the daemon into the registry.
func testCopyBetweenStores(t *testing.T, cli *client.Client) {
	reg := testhelpers.StartRegistry(t)
	src := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	ref, err := name.ParseReference(reg.Repo("imgutil-test/src:latest"))
	must(t, err)
	must(t, ggcrremote.Write(ref, src, ggcrremote.WithAuthFromKeychain(reg.Keychain())))
	pulled, err := ggcrremote.Image(ref, ggcrremote.WithAuthFromKeychain(reg.Keychain()))
	must(t, err)

	inDaemon := freshName(t, cli)
	img := newImage(t, cli, inDaemon, local.FromBaseImageInstance(pulled))
	must(t, img.Save())
	inspect, err := cli.ImageInspect(context.Background(), inDaemon)
	must(t, err)
	if want := testhelpers.DiffIDs(t, src); !slices.Equal(inspect.RootFS.Layers, want) {
		t.Fatalf("registry to daemon: layers %v, want %v", inspect.RootFS.Layers, want)
	}
	testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, inDaemon))

	counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, cli.DaemonHost())}
	back := newImage(t, counting, freshName(t, cli), local.FromBaseImage(inDaemon))
	out, err := remote.NewImage(reg.Repo("imgutil-test/back:latest"), reg.Keychain(), remote.FromBaseImageInstance(back.UnderlyingImage()))
	must(t, err)
	must(t, out.Save())
	if n := counting.saves.Load(); n != 1 {
		t.Errorf("daemon to registry read the image %d times from the daemon, want 1", n)
	}
	backRef, err := name.ParseReference(reg.Repo("imgutil-test/back:latest"))
	must(t, err)
	got, err := ggcrremote.Image(backRef, ggcrremote.WithAuthFromKeychain(reg.Keychain()))
	must(t, err)
	testhelpers.CheckImage(t, got)
	if ids := testhelpers.DiffIDs(t, got); !slices.Equal(ids, testhelpers.DiffIDs(t, src)) {
		t.Fatalf("daemon to registry: layers %v, want %v", ids, testhelpers.DiffIDs(t, src))
	}
}
