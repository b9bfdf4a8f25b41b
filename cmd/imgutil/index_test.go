package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	ctrdclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil/testhelpers"
)

// copy keeps every platform of a multi-platform image (an OCI layout
// holding a two-platform index): into a registry as the index (pulled
// back by the second platform's digest), into a daemon with the
// containerd image store as one image whose ID is the index digest
// (inspected by platform; `inspect` lists both platforms with their
// digests), into a containerd namespace as one record naming the index. A
// daemon that holds one platform per image refuses, saying to pick one;
// with --platform, that platform is copied.
func TestCopyMultiPlatform(t *testing.T) {
	amd, arm := testhelpers.PlatformImage(t, "amd64"), testhelpers.PlatformImage(t, "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	idxDigest, err := idx.Digest()
	must(t, err)
	armDigest, err := arm.Digest()
	must(t, err)
	dir := filepath.Join(t.TempDir(), "multi")
	p, err := ggcrlayout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendIndex(idx))

	reg := testhelpers.StartRegistry(t)
	ok(t, nil, "copy", "oci:"+dir, reg.Repo("multi/app:1"))
	ref, err := name.ParseReference(reg.Repo("multi/app:1"))
	must(t, err)
	desc, err := remote.Get(ref)
	must(t, err)
	if desc.Digest != idxDigest {
		t.Fatalf("the registry holds %s (%s), want the index %s", desc.Digest, desc.MediaType, idxDigest)
	}
	byDigest, err := name.ParseReference(reg.Repo("multi/app@" + armDigest.String()))
	must(t, err)
	pulled, err := remote.Image(byDigest)
	must(t, err)
	testhelpers.CheckImage(t, pulled)

	// From the registry into a layout: index.json names the index, every
	// blob is there and hashes to its digest, inspect lists both platforms.
	out := filepath.Join(t.TempDir(), "copied")
	ok(t, nil, "copy", reg.Repo("multi/app:1"), "oci:"+out)
	lp, err := ggcrlayout.FromPath(out)
	must(t, err)
	top, err := lp.ImageIndex()
	must(t, err)
	im, err := top.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != idxDigest {
		t.Fatalf("the layout's index.json lists %+v, want the index %s", im.Manifests, idxDigest)
	}
	copied, err := top.ImageIndex(idxDigest)
	must(t, err)
	must(t, validate.Index(copied))
	if ps := platformsOf(t, ok(t, nil, "inspect", "oci:"+out)); len(ps) != 2 || ps["arm64"] != armDigest.String() {
		t.Errorf("inspect of the copied layout lists platforms %v, want amd64 and arm64 (%s)", ps, armDigest)
	}

	forEachContainerd(t, func(t *testing.T, env []string) {
		target := "containerd://imgutil-cli//example.com/multi/app:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
		ok(t, env, "copy", "oci:"+dir, target)
		c, err := ctrdclient.New(strings.TrimPrefix(env[0], "CONTAINERD_ADDRESS="))
		must(t, err)
		defer c.Close()
		ctx := namespaces.WithNamespace(context.Background(), "imgutil-cli")
		n := strings.TrimPrefix(target, "containerd://imgutil-cli//")
		t.Cleanup(func() { _ = c.ImageService().Delete(ctx, n) })
		rec, err := c.ImageService().Get(ctx, n)
		must(t, err)
		if rec.Target.Digest.String() != idxDigest.String() {
			t.Fatalf("copied into containerd as %s, want the index %s", rec.Target.Digest, idxDigest)
		}
		if ps := platformsOf(t, ok(t, env, "inspect", target)); len(ps) != 2 || ps["arm64"] != armDigest.String() {
			t.Errorf("inspect of %s lists platforms %v, want amd64 and arm64 (%s)", target, ps, armDigest)
		}

		// Out of containerd into a registry: the index, whole.
		out := reg.Repo("multi/from-containerd:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
		ok(t, env, "copy", target, out)
		ref, err := name.ParseReference(out)
		must(t, err)
		desc, err := remote.Get(ref)
		must(t, err)
		if desc.Digest != idxDigest {
			t.Fatalf("copied out of containerd as %s (%s), want the index %s", desc.Digest, desc.MediaType, idxDigest)
		}
		fromCtrd, err := remote.Index(ref)
		must(t, err)
		must(t, validate.Index(fromCtrd))

		// Both platforms held, not arm64's attestation (attestations are
		// seldom pulled): the two platforms are copied as a new index, and
		// stderr says so.
		att := testhelpers.PlatformImage(t, "unknown")
		attDigest, err := att.Digest()
		must(t, err)
		withAtt := mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": armDigest.String()}}})
		attLayout := filepath.Join(t.TempDir(), "with-att")
		lp, err := ggcrlayout.Write(attLayout, empty.Index)
		must(t, err)
		must(t, lp.AppendIndex(withAtt))
		ok(t, env, "copy", "oci:"+attLayout, target)
		must(t, c.ContentStore().Delete(ctx, digest.Digest(attDigest.String())))
		part := reg.Repo("multi/held-part:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
		_, errOut, code := cli(t, env, "copy", target, part)
		if code != 0 || !strings.Contains(errOut, "attestations") {
			t.Fatalf("copy of an index lacking an attestation: exit %d, stderr %q: want both platforms copied and a note", code, errOut)
		}
		ref, err = name.ParseReference(part)
		must(t, err)
		partIdx, err := remote.Index(ref)
		must(t, err)
		must(t, validate.Index(partIdx))
		pm, err := partIdx.IndexManifest()
		must(t, err)
		if len(pm.Manifests) != 2 || pm.Manifests[1].Digest != armDigest {
			t.Errorf("copied %+v, want the amd64 and arm64 images alone", pm.Manifests)
		}

		// The namespace lacking the arm64 image's config (as after a pull
		// of one platform): the platform held is copied, and stderr says
		// what was left out.
		armCfg, err := arm.ConfigName()
		must(t, err)
		must(t, c.ContentStore().Delete(ctx, digest.Digest(armCfg.String())))
		one := reg.Repo("multi/one-platform:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
		_, errOut, code = cli(t, env, "copy", target, one)
		if code != 0 || !strings.Contains(errOut, "linux/arm64") {
			t.Fatalf("copy of an index lacking arm64's content: exit %d, stderr %q: want the amd64 image copied and a note naming linux/arm64", code, errOut)
		}
		ref, err = name.ParseReference(one)
		must(t, err)
		desc, err = remote.Get(ref)
		must(t, err)
		if amdDigest, err := amd.Digest(); err != nil || desc.Digest != amdDigest {
			t.Errorf("copied %s, want the amd64 image %s", desc.Digest, amdDigest)
		}
	})
	// One platform and its attestation (as buildx writes by default) is
	// one platform: copied as before into every daemon.
	host := testhelpers.PlatformImage(t, runtime.GOARCH)
	withAtt := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: host, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
		mutate.IndexAddendum{Add: testhelpers.PlatformImage(t, "unknown"), Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}, Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}}})
	attDir := filepath.Join(t.TempDir(), "attested")
	p2, err := ggcrlayout.Write(attDir, empty.Index)
	must(t, err)
	must(t, p2.AppendIndex(withAtt))

	testhelpers.ForEachDaemon(t, func(t *testing.T, c *client.Client) {
		env := testhelpers.DaemonEnv(c.DaemonHost())
		ctx := context.Background()
		attested := "imgutil-cli/attested:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
		testhelpers.DockerCleanup(t, c, attested)
		ok(t, env, "copy", "oci:"+attDir, "docker://"+attested)
		if res, err := c.ImageInspect(ctx, attested); err != nil || res.Architecture != runtime.GOARCH {
			t.Fatalf("a one-platform image with its attestation copied: %v, %v", res.Architecture, err)
		}
		target := "imgutil-cli/multi:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
		testhelpers.DockerCleanup(t, c, target)
		_, errOut, code := cli(t, env, "copy", "oci:"+dir, "docker://"+target)
		if code != 0 {
			if !strings.Contains(errOut, "--platform") || !strings.Contains(errOut, "linux/arm64") {
				t.Fatalf("copy of a multi-platform image refused without saying what to do: exit %d: %s", code, errOut)
			}
			if _, err := c.ImageInspect(ctx, target); err == nil {
				t.Fatalf("a refused copy named %s", target)
			}
			ok(t, env, "copy", "--platform", "linux/arm64", "oci:"+dir, "docker://"+target)
			res, err := c.ImageInspect(ctx, target)
			must(t, err)
			if res.Architecture != "arm64" {
				t.Fatalf("copy --platform linux/arm64 gave %s", res.Architecture)
			}
			return
		}
		res, err := c.ImageInspect(ctx, target)
		must(t, err)
		if res.ID != idxDigest.String() {
			t.Fatalf("copied into the daemon as %s, want the index %s", res.ID, idxDigest)
		}
		for _, arch := range []string{"amd64", "arm64"} {
			got, err := c.ImageInspect(ctx, target, client.ImageInspectWithPlatform(&ocispec.Platform{OS: "linux", Architecture: arch}))
			must(t, err)
			if got.Architecture != arch {
				t.Errorf("inspected for linux/%s: %s", arch, got.Architecture)
			}
		}
		if ps := platformsOf(t, ok(t, env, "inspect", "docker://"+target)); len(ps) != 2 || ps["arm64"] != armDigest.String() {
			t.Errorf("inspect lists platforms %v, want amd64 and arm64 (%s)", ps, armDigest)
		}

		// Out of the daemon into a registry and a layout: the index,
		// whole; no temporary file left.
		out := reg.Repo("multi/from-daemon:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
		tmp := t.TempDir()
		env = append(env, "TMPDIR="+tmp)
		ok(t, env, "copy", "docker://"+target, out)
		ref, err := name.ParseReference(out)
		must(t, err)
		fromDaemon, err := remote.Index(ref)
		must(t, err)
		if d, err := fromDaemon.Digest(); err != nil || d != idxDigest {
			t.Fatalf("copied out of the daemon as %s (%v), want the index %s", d, err, idxDigest)
		}
		must(t, validate.Index(fromDaemon))
		outDir := filepath.Join(t.TempDir(), "from-daemon")
		ok(t, env, "copy", "docker://"+target, "oci:"+outDir)
		if ps := platformsOf(t, ok(t, nil, "inspect", "oci:"+outDir)); len(ps) != 2 || ps["arm64"] != armDigest.String() {
			t.Errorf("inspect of the layout copied out of the daemon lists %v", ps)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("copies out of the daemon left %d entries in TMPDIR", len(left))
		}

		// The daemon lacking the arm64 image's config (removed through the
		// daemon's own containerd, where the test can reach it), as after
		// a pull of one platform: the platform held is copied, its image
		// (a pull takes one platform: no note).
		sock, host, found := strings.Cut(os.Getenv("IMGUTIL_MOBY_CONTAINERD"), "=")
		if !found || host != c.DaemonHost() {
			return
		}
		mc, err := ctrdclient.New(sock)
		must(t, err)
		defer mc.Close()
		armCfg, err := arm.ConfigName()
		must(t, err)
		must(t, mc.ContentStore().Delete(namespaces.WithNamespace(ctx, "moby"), digest.Digest(armCfg.String())))
		one := reg.Repo("multi/daemon-one:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
		ok(t, env, "copy", "docker://"+target, one)
		ref, err = name.ParseReference(one)
		must(t, err)
		copied, err := remote.Image(ref)
		must(t, err)
		cfg, err := copied.ConfigFile()
		must(t, err)
		if cfg.Architecture != "amd64" {
			t.Errorf("copied an image of %s, want amd64's", cfg.Architecture)
		}
		testhelpers.CheckImage(t, copied)
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// platformsOf reads the platforms `inspect` printed, by architecture.
func platformsOf(t *testing.T, inspected string) map[string]string {
	var out struct {
		Platforms []struct {
			Arch   string `json:"architecture"`
			Digest string `json:"digest"`
		} `json:"platforms"`
	}
	must(t, json.Unmarshal([]byte(inspected), &out))
	ps := map[string]string{}
	for _, p := range out.Platforms {
		ps[p.Arch] = p.Digest
	}
	return ps
}
