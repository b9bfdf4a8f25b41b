package local_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// twoPlatforms is an index of two random images, linux/amd64 and
// linux/arm64.
func twoPlatforms(t *testing.T, amd64, arm64 v1.Image) v1.ImageIndex {
	t.Helper()
	return mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
}

// testSaveIndex: a multi-platform image saved into the containerd image
// store is one image whose ID is the index digest, each platform's
// manifest complete and inspectable by platform; a rebuild of one
// platform sends only that platform's new blobs. A store that holds one
// platform per image (classic, Podman) refuses it with
// ErrIndexNotSupported, naming the platforms, and tags nothing.
func testSaveIndex(t *testing.T, cli *client.Client) {
	ctx := context.Background()
	amd, arm := platformImage(t, "amd64"), platformImage(t, "arm64")
	idx := twoPlatforms(t, amd, arm)
	counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, cli.DaemonHost())}
	store := local.NewStore(counting)
	t.Cleanup(func() { _ = store.Close() })
	name := freshName(t, cli)
	id, err := store.SaveIndex(ctx, idx, name)
	if !containerdStore(t, cli) {
		if !errors.Is(err, local.ErrIndexNotSupported) || !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "linux/arm64") {
			t.Fatalf("SaveIndex into a store of one platform per image: %v, want ErrIndexNotSupported naming the platforms", err)
		}
		if _, err := cli.ImageInspect(ctx, name); err == nil {
			t.Fatalf("a refused index save named %s", name)
		}
		// One platform per image: its own, without a manifest digest.
		testhelpers.DockerPut(t, cli, name, arm)
		ps, err := store.Platforms(ctx, name)
		must(t, err)
		if len(ps) != 1 || ps[0].Platform.Architecture != "arm64" {
			t.Errorf("Platforms of a single-platform image: %+v, want linux/arm64 alone", ps)
		}
		if _, err := store.Platforms(ctx, freshName(t, cli)); !errors.Is(err, imgutil.ErrNotFound) {
			t.Errorf("Platforms of a missing image: %v, want ErrNotFound", err)
		}
		return
	}
	must(t, err)
	want, err := idx.Digest()
	must(t, err)
	if id != want.String() {
		t.Fatalf("SaveIndex = %s, want the index digest %s", id, want)
	}
	checkPlatforms(t, cli, name, want, map[string]v1.Image{"amd64": amd, "arm64": arm})
	first := counting.loadBytes.Load()

	// A rebuild of arm64 alone, by another Store (another process: what
	// the store holds is learnt from the image record and the manifest
	// cache on disk), with a second name: amd64's blobs are in the store,
	// not sent.
	counting = &countingClient{Client: testhelpers.NewLifecycleClient(t, cli.DaemonHost())}
	store = local.NewStore(counting)
	t.Cleanup(func() { _ = store.Close() })
	arm2 := platformImage(t, "arm64")
	idx2 := twoPlatforms(t, amd, arm2)
	extra := freshName(t, cli)
	id2, err := store.SaveIndex(ctx, idx2, name, extra)
	must(t, err)
	want2, err := idx2.Digest()
	must(t, err)
	if id2 != want2.String() {
		t.Fatalf("SaveIndex = %s, want %s", id2, want2)
	}
	checkPlatforms(t, cli, name, want2, map[string]v1.Image{"amd64": amd, "arm64": arm2})
	checkPlatforms(t, cli, extra, want2, map[string]v1.Image{"amd64": amd, "arm64": arm2})

	// Each platform's manifest digest, as a registry names it.
	ps, err := store.Platforms(ctx, name)
	must(t, err)
	got := map[string]string{}
	for _, p := range ps {
		if !p.Available {
			t.Errorf("platform %s/%s not available", p.Platform.OS, p.Platform.Architecture)
		}
		got[p.Platform.OS+"/"+p.Platform.Architecture] = p.Digest.String()
	}
	amdDigest, _ := amd.Digest()
	armDigest, _ := arm2.Digest()
	if len(got) != 2 || got["linux/amd64"] != amdDigest.String() || got["linux/arm64"] != armDigest.String() {
		t.Errorf("Platforms(%s) = %v, want linux/amd64 %s and linux/arm64 %s", name, got, amdDigest, armDigest)
	}
	sent := counting.loadBytes.Load()
	amdSize := blobsSize(t, amd)
	if first < amdSize+blobsSize(t, arm) {
		t.Errorf("the first save sent %d bytes, less than the blobs of both platforms (%d)", first, amdSize+blobsSize(t, arm))
	}
	if sent > blobsSize(t, arm2)+64<<10 {
		t.Errorf("the rebuild of arm64 sent %d bytes; its blobs are %d, amd64's %d: amd64 was sent again", sent, blobsSize(t, arm2), amdSize)
	}
	t.Logf("first save sent %d bytes, the rebuild of one platform %d", first, sent)

	// A client of API 1.47 (Docker 27, whose inspect has no manifests):
	// the platforms are read from the image's export.
	old, err := client.New(client.WithHost(cli.DaemonHost()), client.WithAPIVersion("1.47"))
	must(t, err)
	t.Cleanup(func() { _ = old.Close() })
	oldStore := local.NewStore(old)
	t.Cleanup(func() { _ = oldStore.Close() })
	ps, err = oldStore.Platforms(ctx, name)
	must(t, err)
	got = map[string]string{}
	for _, p := range ps {
		got[p.Platform.OS+"/"+p.Platform.Architecture] = p.Digest.String()
	}
	if len(got) != 2 || got["linux/amd64"] != amdDigest.String() || got["linux/arm64"] != armDigest.String() {
		t.Errorf("Platforms(%s) over API 1.47 = %v, want linux/amd64 %s and linux/arm64 %s", name, got, amdDigest, armDigest)
	}

	// A client of API 1.48 to 1.51 (Docker 28): the load takes one
	// platform at most; without one the store takes every platform.
	v148, err := client.New(client.WithHost(cli.DaemonHost()), client.WithAPIVersion("1.48"))
	must(t, err)
	t.Cleanup(func() { _ = v148.Close() })
	store148 := local.NewStore(v148)
	t.Cleanup(func() { _ = store148.Close() })
	name148 := freshName(t, cli)
	if _, err := store148.SaveIndex(ctx, idx2, name148); err != nil {
		t.Fatalf("SaveIndex over API 1.48: %v", err)
	}
	checkPlatforms(t, cli, name148, want2, map[string]v1.Image{"amd64": amd, "arm64": arm2})

	// An index with an attestation manifest (unknown/unknown, as buildx
	// adds one per platform): stored with the rest, not a platform.
	att := platformImage(t, "unknown")
	attDigest, err := att.Digest()
	must(t, err)
	withAtt := mutate.AppendManifests(idx2, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": armDigestOf(t, arm2)},
	}})
	attName := freshName(t, cli)
	if _, err := store.SaveIndex(ctx, withAtt, attName); err != nil {
		t.Fatalf("SaveIndex of an index with an attestation manifest (%s): %v", attDigest, err)
	}
	checkPlatforms(t, cli, attName, mustDigest(t, withAtt), map[string]v1.Image{"amd64": amd, "arm64": arm2})

	// One platform of it opened as a base (WithDefaultPlatform): its
	// config and layers; an app saved on it is an image of that platform.
	for arch, img := range map[string]v1.Image{"amd64": amd, "arm64": arm2} {
		app := freshName(t, cli)
		onIt := newImage(t, cli, app, local.FromBaseImage(name), local.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: arch}), local.WithHistory())
		if got, _ := onIt.Architecture(); got != arch {
			t.Fatalf("%s opened for linux/%s has architecture %s", name, arch, got)
		}
		wantIDs := testhelpers.DiffIDs(t, img)
		top, err := onIt.TopLayer()
		must(t, err)
		if top != wantIDs[len(wantIDs)-1] {
			t.Fatalf("%s opened for linux/%s: top layer %s, want %s", name, arch, top, wantIDs[len(wantIDs)-1])
		}
		testhelpers.CheckGetLayer(t, onIt.GetLayer, top)
		l, id := testhelpers.LayerFile(t, map[string]string{"on": arch})
		must(t, onIt.AddLayer(l))
		must(t, onIt.Save())
		res, err := cli.ImageInspect(ctx, app)
		must(t, err)
		if res.Architecture != arch || !slices.Equal(res.RootFS.Layers, append(wantIDs, id)) {
			t.Errorf("app on the %s platform: %s, layers %v; want %s, %v", arch, res.Architecture, res.RootFS.Layers, arch, append(wantIDs, id))
		}
	}

	// A rebuild that adds one layer to arm64: its lower layers are in the
	// store (under the arm64 manifest the image had), only the new one goes.
	top, err := random.Layer(256<<10, types.DockerLayer)
	must(t, err)
	arm3, err := mutate.AppendLayers(arm2, top)
	must(t, err)
	before := counting.loadBytes.Load()
	_, err = store.SaveIndex(ctx, twoPlatforms(t, amd, arm3), name)
	must(t, err)
	topSize, err := top.Size()
	must(t, err)
	if sent := counting.loadBytes.Load() - before; sent > topSize+64<<10 {
		t.Errorf("a rebuild adding a layer of %d bytes to arm64 sent %d", topSize, sent)
	}
	checkPlatforms(t, cli, name, mustDigest(t, twoPlatforms(t, amd, arm3)), map[string]v1.Image{"amd64": amd, "arm64": arm3})
}

// platformImage is a random image of two layers of 512 KiB whose config
// says linux/arch.
func platformImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	return testhelpers.PlatformImageOfSize(t, arch, 512<<10, 2)
}

// checkPlatforms checks the image under name is the index digest, and that
// the daemon gives each platform's config when asked for that platform.
func checkPlatforms(t *testing.T, cli *client.Client, name string, digest v1.Hash, images map[string]v1.Image) {
	t.Helper()
	ctx := context.Background()
	res, err := cli.ImageInspect(ctx, name, client.ImageInspectWithManifests(true))
	must(t, err)
	if res.ID != digest.String() {
		t.Fatalf("%s is %s, want the index %s", name, res.ID, digest)
	}
	for arch, img := range images {
		m, err := img.Digest()
		must(t, err)
		found := false
		for _, ms := range res.Manifests {
			if ms.ID == m.String() {
				found = true
				if !ms.Available {
					t.Errorf("%s: the %s manifest %s is not all in the store", name, arch, m)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %s manifest %s among %d", name, arch, m, len(res.Manifests))
		}
		cfg, err := img.ConfigName()
		must(t, err)
		byPlatform, err := cli.ImageInspect(ctx, name, client.ImageInspectWithPlatform(&ocispec.Platform{OS: "linux", Architecture: arch}))
		must(t, err)
		if byPlatform.Architecture != arch {
			t.Errorf("%s inspected for linux/%s says %s (config %s)", name, arch, byPlatform.Architecture, cfg)
		}
	}
}

// blobsSize is the size of img's manifest, config and layer blobs.
func blobsSize(t *testing.T, img v1.Image) int64 {
	m, err := img.Manifest()
	must(t, err)
	raw, err := img.RawManifest()
	must(t, err)
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func armDigestOf(t *testing.T, img v1.Image) string {
	d, err := img.Digest()
	must(t, err)
	return d.String()
}

func mustDigest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	d, err := idx.Digest()
	must(t, err)
	return d
}
