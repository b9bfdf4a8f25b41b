package remote_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

// proxy sits between the library and a real registry: it counts blob
// uploads and mounts, and can reject manifests.
type proxy struct {
	host            string
	uploads, mounts atomic.Int64
	rejectManifests atomic.Bool
	// failUploads answers blob uploads with 500; unauthorizedManifests
	// answers manifest writes with 401 (credentials revoked mid-push).
	failUploads, unauthorizedManifests atomic.Bool

	// mu guards blobReads: the digests of the blobs read (GET).
	mu        sync.Mutex
	blobReads []string
}

func startProxy(t *testing.T, reg *testhelpers.Registry) *proxy {
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			p.mu.Lock()
			p.blobReads = append(p.blobReads, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			p.mu.Unlock()
		}
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			if r.URL.Query().Get("mount") != "" {
				p.mounts.Add(1)
			} else {
				p.uploads.Add(1)
			}
		}
		if p.failUploads.Load() && (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if p.unauthorizedManifests.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"revoked by the test"}]}`))
			return
		}
		if p.rejectManifests.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_INVALID","message":"rejected by the test"}]}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// TestRebuildUploadsNoReusedBlob: the first push mounts the base's blobs
// from its repository; a rebuild that reuses layers uploads only the new
// layer and the config.
func TestRebuildUploadsNoReusedBlob(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	p := startProxy(t, reg)
	base := p.host + "/imgutil-test/base:latest"
	put(t, reg, reg.Repo("imgutil-test/base:latest"), testhelpers.BusyboxImage(t, imgutil.OCITypes))

	prevName := p.host + "/imgutil-test/app:previous"
	prev, err := remote.NewImage(prevName, authn.DefaultKeychain, remote.FromBaseImage(base))
	must(t, err)
	var appIDs []string
	for range 2 {
		l, id := testhelpers.RandomLayerFile(t, 32<<10)
		must(t, prev.AddLayerWithDiffID(l, id))
		appIDs = append(appIDs, id)
	}
	must(t, prev.Save())
	if p.mounts.Load() == 0 {
		t.Errorf("the first push mounted no base blob (uploads %d)", p.uploads.Load())
	}

	p.uploads.Store(0)
	p.mounts.Store(0)
	name := p.host + "/imgutil-test/app:latest"
	img, err := remote.NewImage(name, authn.DefaultKeychain, remote.FromBaseImage(base), remote.WithPreviousImage(prevName))
	must(t, err)
	for _, id := range appIDs {
		must(t, img.ReuseLayer(id))
	}
	l, _ := testhelpers.RandomLayerFile(t, 32<<10)
	must(t, img.AddLayer(l))
	must(t, img.SetLabel("rebuilt", "yes"))
	must(t, img.Save(p.host+"/imgutil-test/app:v2"))
	// The new layer and the config; the extra tag writes no blob.
	if got := p.uploads.Load(); got != 2 {
		t.Errorf("the rebuild uploaded %d blobs, want 2 (new layer and config)", got)
	}
	got := read(t, reg, reg.Repo("imgutil-test/app:latest"))
	testhelpers.CheckImage(t, got)
	if d1, d2 := mustDigest(t, got), mustDigest(t, read(t, reg, reg.Repo("imgutil-test/app:v2"))); d1 != d2 {
		t.Errorf("the two tags point at %s and %s", d1, d2)
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	d, err := img.Digest()
	must(t, err)
	return d
}

// TestIndexTwoPlatforms pushes an index of two platforms; each child
// resolves to its platform, and a base picks its platform from it.
func TestIndexTwoPlatforms(t *testing.T) {
	reg := testhelpers.StartRegistry(t, testhelpers.WithBasicAuth("builder", "s3cret"))
	ref := reg.Repo("imgutil-test/multi:latest")
	idx, err := remote.NewIndex(ref, imgutil.WithKeychain(reg.Keychain()), imgutil.WithXDGRuntimePath(t.TempDir()))
	must(t, err)
	for _, arch := range []string{"amd64", "arm64"} {
		idx.AddManifest(testhelpers.PlatformImage(t, arch))
	}
	must(t, idx.Push(imgutil.WithTags("v1"), imgutil.WithPurge(true)))

	r, err := name.ParseReference(ref)
	must(t, err)
	pushed, err := ggcrremote.Index(r, ggcrremote.WithAuthFromKeychain(reg.Keychain()))
	must(t, err)
	m, err := pushed.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 2 {
		t.Fatalf("pushed index has %d manifests", len(m.Manifests))
	}
	for _, d := range m.Manifests {
		child, err := ggcrremote.Image(r.Context().Digest(d.Digest.String()), ggcrremote.WithAuthFromKeychain(reg.Keychain()))
		must(t, err)
		cfg, err := child.ConfigFile()
		must(t, err)
		if d.Platform == nil || cfg.Architecture != d.Platform.Architecture {
			t.Errorf("child %s: descriptor platform %v, config architecture %s", d.Digest, d.Platform, cfg.Architecture)
		}
	}
	if _, err := ggcrremote.Index(r.Context().Tag("v1"), ggcrremote.WithAuthFromKeychain(reg.Keychain())); err != nil {
		t.Errorf("tag v1 not pushed: %v", err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := remote.NewImage(reg.Repo("imgutil-test/x:latest"), reg.Keychain(), remote.FromBaseImage(ref),
			remote.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: arch}))
		must(t, err)
		if got, _ := img.Architecture(); got != arch {
			t.Errorf("base picked for %s has architecture %s", arch, got)
		}
	}
}

func TestBadInput(t *testing.T) {
	reg := testhelpers.StartRegistry(t, testhelpers.WithBasicAuth("builder", "s3cret"))
	existing := reg.Repo("imgutil-test/exists:latest")
	put(t, reg, existing, testhelpers.PlatformImage(t, "amd64"))
	wrong := (&testhelpers.Registry{Host: reg.Host, Username: "builder", Password: "wrong"}).Keychain()

	t.Run("WrongCredentials", func(t *testing.T) {
		if _, err := remote.NewImage(reg.Repo("imgutil-test/y:latest"), wrong, remote.FromBaseImage(existing)); !errors.Is(err, imgutil.ErrUnauthorized) {
			t.Errorf("NewImage with a base and wrong credentials = %v, want ErrUnauthorized", err)
		}
		img, err := remote.NewImage(existing, wrong)
		must(t, err)
		if found, err := img.FoundE(context.Background()); found || !errors.Is(err, imgutil.ErrUnauthorized) || errors.Is(err, imgutil.ErrNotFound) {
			t.Errorf("FoundE with wrong credentials = %v, %v; want false and ErrUnauthorized", found, err)
		}
		var se imgutil.SaveError
		if err := img.Save(); !errors.As(err, &se) || !errors.Is(err, imgutil.ErrUnauthorized) {
			t.Errorf("Save with wrong credentials = %v, want a SaveError matching ErrUnauthorized", err)
		}
		if ok, err := img.CheckReadAccess(); ok || err != nil {
			t.Errorf("CheckReadAccess with wrong credentials = %v, %v; want false, nil", ok, err)
		}
		good, err := remote.NewImage(existing, reg.Keychain())
		must(t, err)
		if ok, err := good.CheckReadWriteAccess(); !ok || err != nil {
			t.Errorf("CheckReadWriteAccess with the right credentials = %v, %v", ok, err)
		}
	})

	t.Run("UnreachableRegistry", func(t *testing.T) {
		dead := (&testhelpers.Registry{Host: "127.0.0.1:1"}).Repo("imgutil-test/x:latest")
		img, err := remote.NewImage(dead, authn.DefaultKeychain)
		must(t, err)
		if found, err := img.FoundE(context.Background()); found || !errors.Is(err, remote.ErrRegistryUnreachable) {
			t.Errorf("FoundE of an unreachable registry = %v, %v; want ErrRegistryUnreachable", found, err)
		}
	})

	t.Run("InvalidReference", func(t *testing.T) {
		if _, err := remote.NewImage("Not/A Valid:Name", authn.DefaultKeychain); !errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Errorf("NewImage(invalid) = %v, want ErrInvalidArgument", err)
		}
	})

	t.Run("ServerErrorOnUpload", func(t *testing.T) {
		anon := testhelpers.StartRegistry(t)
		p := startProxy(t, anon)
		p.failUploads.Store(true)
		img, err := remote.NewImage(p.host+"/imgutil-test/fail:latest", authn.DefaultKeychain)
		must(t, err)
		l, _ := testhelpers.RandomLayerFile(t, 64<<10)
		must(t, img.AddLayer(l))
		var se imgutil.SaveError
		if err := img.Save(); !errors.As(err, &se) {
			t.Fatalf("Save with a failing upload = %v, want a SaveError", err)
		}
		p.failUploads.Store(false)
		if img.Found() {
			t.Errorf("a push whose upload failed left a manifest")
		}
	})

	t.Run("UnauthorizedMidPush", func(t *testing.T) {
		anon := testhelpers.StartRegistry(t)
		p := startProxy(t, anon)
		p.unauthorizedManifests.Store(true)
		img, err := remote.NewImage(p.host+"/imgutil-test/revoked:latest", authn.DefaultKeychain)
		must(t, err)
		l, _ := testhelpers.RandomLayerFile(t, 64<<10)
		must(t, img.AddLayer(l))
		if err := img.Save(); !errors.Is(err, imgutil.ErrUnauthorized) {
			t.Fatalf("Save refused mid-push = %v, want ErrUnauthorized", err)
		}
		p.unauthorizedManifests.Store(false)
		if img.Found() {
			t.Errorf("a push refused mid-way left a manifest")
		}
	})

	t.Run("ManifestRejected", func(t *testing.T) {
		anon := testhelpers.StartRegistry(t)
		p := startProxy(t, anon)
		p.rejectManifests.Store(true)
		img, err := remote.NewImage(p.host+"/imgutil-test/rejected:latest", authn.DefaultKeychain)
		must(t, err)
		l, _ := testhelpers.RandomLayerFile(t, 1024)
		must(t, img.AddLayer(l))
		var se imgutil.SaveError
		err = img.Save()
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "MANIFEST_INVALID") {
			t.Fatalf("Save of a rejected manifest = %v, want a SaveError saying MANIFEST_INVALID", err)
		}
		p.rejectManifests.Store(false)
		if img.Found() {
			t.Errorf("a rejected manifest is found in the registry")
		}
	})
}

func TestPushProgress(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	var mu sync.Mutex
	var last imgutil.Progress
	updates := 0
	img, err := remote.NewImage(reg.Repo("imgutil-test/progress:latest"), reg.Keychain(), imgutil.WithProgress(func(p imgutil.Progress) {
		mu.Lock()
		defer mu.Unlock()
		last, updates = p, updates+1
	}))
	must(t, err)
	l, _ := testhelpers.RandomLayerFile(t, 2<<20)
	must(t, img.AddLayer(l))
	must(t, img.Save())
	mu.Lock()
	defer mu.Unlock()
	if updates == 0 || last.Phase != "push" || last.Complete != last.Total {
		t.Fatalf("push progress: %d updates, last %+v", updates, last)
	}
}

// TestWindowsImageFromScratch: a new Windows image gets the Windows base
// layer first, as the existing library gives it, so TopLayer and Save work.
func TestWindowsImageFromScratch(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	ref := reg.Repo("win/app:latest")
	img, err := remote.NewImage(ref, reg.Keychain(), remote.WithDefaultPlatform(imgutil.Platform{OS: "windows", Architecture: "amd64"}))
	must(t, err)
	top, err := img.TopLayer()
	must(t, err)
	must(t, img.Save())
	saved := reg.Get(t, "win/app:latest")
	testhelpers.CheckImage(t, saved)
	cfg, err := saved.ConfigFile()
	must(t, err)
	if cfg.OS != "windows" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].String() != top {
		t.Fatalf("saved windows image: os %s, layers %v, want the base layer %s", cfg.OS, cfg.RootFS.DiffIDs, top)
	}
}

// TestBehaviourCallersRelyOn: Delete of a missing image says the
// registry's code; a base index without the requested platform gives an
// empty image of that platform; a multi-platform index is Valid whatever
// the default platform; Push with a media type pushes that kind of index.
func TestBehaviourCallersRelyOn(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	kc := reg.Keychain()

	missing, err := remote.NewImage(reg.Repo("nobody/here:latest"), kc)
	must(t, err)
	err = missing.Delete()
	if err == nil || (!strings.Contains(err.Error(), "NAME_UNKNOWN") && !strings.Contains(err.Error(), "MANIFEST_UNKNOWN")) {
		t.Errorf("Delete of a missing image = %v, want the registry's NAME_UNKNOWN or MANIFEST_UNKNOWN", err)
	}

	ref := reg.Repo("multi/base:latest")
	idx, err := remote.NewIndex(ref, imgutil.WithKeychain(kc), imgutil.WithXDGRuntimePath(t.TempDir()))
	must(t, err)
	for _, arch := range []string{"amd64", "arm64"} {
		idx.AddManifest(testhelpers.PlatformImage(t, arch))
	}
	must(t, idx.Push(imgutil.WithMediaType(types.DockerManifestList)))
	r, err := name.ParseReference(ref)
	must(t, err)
	desc, err := ggcrremote.Get(r, ggcrremote.WithAuthFromKeychain(kc))
	must(t, err)
	if desc.MediaType != types.DockerManifestList {
		t.Errorf("pushed index media type %s, want %s", desc.MediaType, types.DockerManifestList)
	}

	s390 := imgutil.Platform{OS: "linux", Architecture: "s390x"}
	img, err := remote.NewImage(reg.Repo("multi/app:latest"), kc, remote.FromBaseImage(ref), remote.WithDefaultPlatform(s390))
	must(t, err)
	if arch, _ := img.Architecture(); arch != "s390x" {
		t.Errorf("image on an index without s390x has architecture %q, want an empty s390x image", arch)
	}
	if _, err := img.TopLayer(); err == nil {
		t.Error("image on an index without the platform has layers")
	}
	onIndex, err := remote.NewImage(ref, kc, remote.WithDefaultPlatform(s390))
	must(t, err)
	if !onIndex.Valid() {
		t.Error("a well-formed two-platform index is not Valid for a third platform")
	}
}

// TestReAddedLayerIsNotResent: a layer added again in a later build (a new
// layer file object, its diffID given, as the lifecycle re-adds unchanged
// layers) is known to the registry: it is neither compressed nor sent
// again; only the config is uploaded.
func TestReAddedLayerIsNotResent(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	p := startProxy(t, reg)
	name := p.host + "/imgutil-test/readd:latest"
	l, id := testhelpers.RandomLayerFile(t, 256<<10)
	first, err := remote.NewImage(name, authn.DefaultKeychain)
	must(t, err)
	must(t, first.AddLayerWithDiffID(l, id))
	must(t, first.Save())

	p.uploads.Store(0)
	again, err := remote.NewImage(name, authn.DefaultKeychain)
	must(t, err)
	must(t, again.AddLayerWithDiffID(l, id))
	must(t, again.SetLabel("build", "2"))
	must(t, again.Save())
	if got := p.uploads.Load(); got != 1 {
		t.Errorf("the second build uploaded %d blobs, want 1 (the config)", got)
	}
	testhelpers.CheckImage(t, read(t, reg, reg.Repo("imgutil-test/readd:latest")))
}

// TestFailedUploadThenRetry: a registry that fails uploads mid-way fails
// the save, names nothing that is not there, and the next save succeeds.
func TestFailedUploadThenRetry(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	p := startProxy(t, reg)
	name := p.host + "/imgutil-test/retry:latest"
	l, _ := testhelpers.RandomLayerFile(t, 1<<20)
	p.failUploads.Store(true)
	img, err := remote.NewImage(name, authn.DefaultKeychain)
	must(t, err)
	must(t, img.AddLayer(l))
	if err := img.Save(); err == nil {
		t.Fatal("a save through failing uploads succeeded")
	}
	if found, _ := img.FoundE(t.Context()); found {
		t.Fatal("a failed save left a manifest")
	}
	p.failUploads.Store(false)
	must(t, img.Save())
	testhelpers.CheckImage(t, read(t, reg, reg.Repo("imgutil-test/retry:latest")))
}

// TestIdentifierIsWhatTheRegistryHolds: after a save whose base has layers
// stored uncompressed (an image read from a daemon), which go compressed,
// Identifier is the digest of the manifest the registry holds, until the
// image is edited again.
func TestIdentifierIsWhatTheRegistryHolds(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	p, _ := testhelpers.RandomLayerFile(t, 1<<20)
	l, err := layer.FromFile(p, types.DockerUncompressedLayer, layer.Caches{})
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/ident/app:1"
	img, err := remote.NewImage(ref, authn.DefaultKeychain, func(o *imgutil.ImageOptions) { o.BaseImage = base })
	if err != nil {
		t.Fatal(err)
	}
	if err := img.SetLabel("k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := img.Save(); err != nil {
		t.Fatal(err)
	}
	id, err := img.Identifier()
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := ggcrremote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id.String(), "@"+desc.Digest.String()) {
		t.Fatalf("Identifier() = %s, the registry holds %s", id, desc.Digest)
	}
	// Edited since: the digest of the image as it is now.
	if err := img.SetLabel("k", "w"); err != nil {
		t.Fatal(err)
	}
	if id2, err := img.Identifier(); err != nil || id2.String() == id.String() {
		t.Fatalf("after an edit, Identifier() = %v, %v", id2, err)
	}
}

// unreadLayer fails the test if its bytes are asked for.
type unreadLayer struct {
	v1.Layer
	t *testing.T
}

func (u unreadLayer) Compressed() (io.ReadCloser, error) {
	u.t.Error("a layer was read for a registry out of reach")
	return u.Layer.Compressed()
}

func (u unreadLayer) Uncompressed() (io.ReadCloser, error) {
	u.t.Error("a layer was read for a registry out of reach")
	return u.Layer.Uncompressed()
}

// TestUnreachableRegistryReadsNothing: a save to a registry out of reach
// (a wrong port) fails saying so before any layer is read.
func TestUnreachableRegistryReadsNothing(t *testing.T) {
	p, _ := testhelpers.RandomLayerFile(t, 1<<20)
	l, err := layer.FromFile(p, types.DockerUncompressedLayer, layer.Caches{})
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.AppendLayers(empty.Image, unreadLayer{Layer: l, t: t})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	img, err := remote.NewImage(addr+"/app:1", authn.DefaultKeychain, func(o *imgutil.ImageOptions) { o.BaseImage = base })
	if err != nil {
		t.Fatal(err)
	}
	err = img.Save()
	if !errors.Is(err, remote.ErrRegistryUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Save to %s: %v, want ErrRegistryUnreachable naming it", addr, err)
	}
}

// TestUnreachableRegistryFailsOnlyItsNames: a save to names on two
// registries, one out of reach, pushes to the other and fails only the
// names of the one out of reach.
func TestUnreachableRegistryFailsOnlyItsNames(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	img, err := remote.NewImage(reg.Host+"/two/app:1", authn.DefaultKeychain)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := testhelpers.LayerFile(t, map[string]string{"f": "f"})
	if err := img.AddLayer(p); err != nil {
		t.Fatal(err)
	}
	err = img.Save(gone + "/two/app:1")
	var se imgutil.SaveError
	if !errors.As(err, &se) || len(se.Errors) != 1 || se.Errors[0].ImageName != gone+"/two/app:1" {
		t.Fatalf("Save: %v, want one failure, for %s", err, gone)
	}
	r, _ := name.ParseReference(reg.Host + "/two/app:1")
	if _, err := ggcrremote.Head(r); err != nil {
		t.Fatalf("the reachable registry did not get the image: %v", err)
	}
}
