package containerd_test

import (
	"errors"
	"os/exec"
	"runtime"
	"testing"

	gname "github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/testhelpers"
)

// A multi-platform image saved into a namespace is one record naming the
// index, every platform's blobs stored and held by it; only the platform
// asked for (this machine's by default) is unpacked; each platform opens
// as a base; containerd's own push sends the whole index to a registry,
// from which the second platform is pulled by its digest.
func testSaveIndex(t *testing.T, d daemon) {
	c := d.client
	ctx := nsCtx(testNamespace)
	images := map[string]v1.Image{"amd64": testhelpers.PlatformImage(t, "amd64"), "arm64": testhelpers.PlatformImage(t, "arm64")}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: images["amd64"], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: images["arm64"], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	want, err := idx.Digest()
	must(t, err)
	reg := testhelpers.StartRegistry(t)
	name := reg.Repo("multi/app:" + d.name)
	t.Cleanup(func() { _ = c.ImageService().Delete(ctx, name) })
	got, err := containerd.SaveIndex(t.Context(), c, name, idx, containerd.WithNamespace(testNamespace))
	must(t, err)
	if got != want {
		t.Fatalf("SaveIndex = %s, want the index digest %s", got, want)
	}
	rec, err := c.ImageService().Get(ctx, name)
	must(t, err)
	if rec.Target.Digest.String() != want.String() {
		t.Fatalf("%s names %s, want the index %s", name, rec.Target.Digest, want)
	}
	sn := c.SnapshotService(containerd.DefaultSnapshotter)
	for arch, img := range images {
		m, err := img.Manifest()
		must(t, err)
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if _, err := c.ContentStore().Info(ctx, digest.Digest(b.Digest.String())); err != nil {
				t.Errorf("%s blob %s: %v", arch, b.Digest, err)
			}
		}
		var diffIDs []digest.Digest
		for _, id := range testhelpers.DiffIDs(t, img) {
			diffIDs = append(diffIDs, digest.Digest(id))
		}
		_, err = sn.Stat(ctx, identity.ChainID(diffIDs).String())
		if unpacked := err == nil; unpacked != (arch == runtime.GOARCH) {
			t.Errorf("%s unpacked: %v (only this machine's platform, %s, should be)", arch, unpacked, runtime.GOARCH)
		}
		on := newImage(t, c, freshName(t, c, testNamespace), imgutil.FromBaseImage(name), imgutil.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: arch}))
		if a, _ := on.Architecture(); a != arch {
			t.Errorf("opened for linux/%s: %s", arch, a)
		}
	}

	// UnpackPlatforms: both platforms unpacked (saved again, under
	// another name: the blobs are there, nothing is written again).
	both := freshName(t, c, testNamespace)
	_, err = containerd.SaveIndex(t.Context(), c, both, idx, containerd.WithNamespace(testNamespace),
		containerd.UnpackPlatforms(imgutil.Platform{OS: "linux", Architecture: "amd64"}, imgutil.Platform{OS: "linux", Architecture: "arm64"}))
	must(t, err)
	for arch, img := range images {
		var diffIDs []digest.Digest
		for _, id := range testhelpers.DiffIDs(t, img) {
			diffIDs = append(diffIDs, digest.Digest(id))
		}
		if _, err := sn.Stat(ctx, identity.ChainID(diffIDs).String()); err != nil {
			t.Errorf("UnpackPlatforms(amd64, arm64): %s not unpacked: %v", arch, err)
		}
	}
	if _, err := containerd.NewImage(freshName(t, c, testNamespace), c, containerd.WithNamespace(testNamespace),
		containerd.UnpackPlatforms(imgutil.Platform{OS: "linux", Architecture: "arm64"})); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("NewImage with UnpackPlatforms: %v, want ErrInvalidArgument", err)
	}

	ctr, err := exec.LookPath("ctr")
	must(t, err)
	out, err := exec.Command(ctr, "--address", d.socket, "-n", testNamespace, "images", "push", "--plain-http", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images push %s: %v\n%s", name, err, out)
	}
	ref, err := gname.ParseReference(name)
	must(t, err)
	desc, err := remote.Get(ref)
	must(t, err)
	if desc.Digest != want {
		t.Fatalf("pushed %s, want the index %s", desc.Digest, want)
	}
	armDigest, err := images["arm64"].Digest()
	must(t, err)
	byDigest, err := gname.ParseReference(reg.Repo("multi/app@" + armDigest.String()))
	must(t, err)
	pulled, err := remote.Image(byDigest)
	must(t, err)
	testhelpers.CheckImage(t, pulled)
}

// OpenIndex reads a multi-platform image of the namespace as an index:
// every blob read back from the content store hashes to its digest, each
// platform is an image. A name of one image is ErrNotIndex, a missing one
// ErrNotFound; an index whose namespace lacks a platform's blob (an image
// pulled for one platform) is an IncompleteIndexError naming it.
func testOpenIndex(t *testing.T, d daemon) {
	c := d.client
	ctx := nsCtx(testNamespace)
	amd, arm := testhelpers.PlatformImageOfSize(t, "amd64", 1024, 2), testhelpers.PlatformImageOfSize(t, "arm64", 1024, 2)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	name := freshName(t, c, testNamespace)
	want, err := containerd.SaveIndex(t.Context(), c, name, idx, containerd.WithNamespace(testNamespace), containerd.WithoutUnpack())
	must(t, err)

	opened, err := containerd.OpenIndex(t.Context(), c, name, containerd.WithNamespace(testNamespace))
	must(t, err)
	if got, err := opened.Digest(); err != nil || got != want {
		t.Fatalf("opened as %s (%v), want %s", got, err, want)
	}
	must(t, validate.Index(opened))
	armDigest, err := arm.Digest()
	must(t, err)
	img, err := opened.Image(armDigest)
	must(t, err)
	if cfg, err := img.ConfigFile(); err != nil || cfg.Architecture != "arm64" {
		t.Errorf("the arm64 image of the index: %v", err)
	}

	single := freshName(t, c, testNamespace)
	put(t, c, testNamespace, single, amd)
	if _, err := containerd.OpenIndex(t.Context(), c, single, containerd.WithNamespace(testNamespace)); !errors.Is(err, containerd.ErrNotIndex) {
		t.Errorf("OpenIndex of one image: %v, want ErrNotIndex", err)
	}
	if _, err := containerd.OpenIndex(t.Context(), c, freshName(t, c, testNamespace), containerd.WithNamespace(testNamespace)); !errors.Is(err, imgutil.ErrNotFound) {
		t.Errorf("OpenIndex of a missing name: %v, want ErrNotFound", err)
	}

	// The arm64 image's top layer removed from the namespace.
	layers, err := arm.Layers()
	must(t, err)
	top, err := layers[len(layers)-1].Digest()
	must(t, err)
	must(t, c.ContentStore().Delete(ctx, digest.Digest(top.String())))
	_, err = containerd.OpenIndex(t.Context(), c, name, containerd.WithNamespace(testNamespace))
	var incomplete *containerd.IncompleteIndexError
	if !errors.As(err, &incomplete) || !errors.Is(err, imgutil.ErrNotFound) || len(incomplete.Missing) != 1 || incomplete.Missing[0].Digest != armDigest {
		t.Fatalf("OpenIndex of an index lacking an arm64 layer: %v, want an IncompleteIndexError naming %s", err, armDigest)
	}
}
