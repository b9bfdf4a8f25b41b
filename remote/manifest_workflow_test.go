package remote_test

import (
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

// TestPackManifestWorkflow does what `pack manifest create / add /
// annotate / remove / push` do with images already in a registry: the
// index is made of them without downloading a layer, annotated, edited and
// pushed; read back from the registry it is what was asked for.
func TestPackManifestWorkflow(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	images := map[string]v1.Image{}
	var layers []string
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		img := testhelpers.PlatformImage(t, arch)
		images[arch] = img
		put(t, reg, reg.Repo("imgutil-test/multi:"+arch), img)
		ls, err := img.Layers()
		must(t, err)
		for _, l := range ls {
			d, err := l.Digest()
			must(t, err)
			layers = append(layers, d.String())
		}
	}
	p := startProxy(t, reg)
	repo := p.host + "/imgutil-test/multi"
	idx, err := remote.NewIndex(repo+":latest", imgutil.WithKeychain(reg.Keychain()), imgutil.WithXDGRuntimePath(t.TempDir()))
	must(t, err)
	digestOf := map[string]name.Digest{}
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		r, err := name.ParseReference(repo + ":" + arch)
		must(t, err)
		img, err := ggcrremote.Image(r, ggcrremote.WithAuthFromKeychain(reg.Keychain()))
		must(t, err)
		idx.AddManifest(img)
		d, err := img.Digest()
		must(t, err)
		digestOf[arch] = r.Context().Digest(d.String())
	}
	// Annotate, as `pack manifest annotate` does.
	must(t, idx.SetOS(digestOf["arm64"], "linux"))
	must(t, idx.SetArchitecture(digestOf["arm64"], "arm64"))
	must(t, idx.SetVariant(digestOf["arm64"], "v8"))
	must(t, idx.SetAnnotations(digestOf["amd64"], map[string]string{"io.example/team": "builders"}))
	must(t, idx.RemoveManifest(digestOf["s390x"]))
	must(t, idx.Push(imgutil.WithTags("v1")))

	for _, read := range p.blobReads {
		if slices.Contains(layers, read) {
			t.Errorf("the workflow downloaded layer %s (blobs read: %v)", read, p.blobReads)
		}
	}
	r, err := name.ParseReference(reg.Repo("imgutil-test/multi:v1"))
	must(t, err)
	pushed, err := ggcrremote.Index(r, ggcrremote.WithAuthFromKeychain(reg.Keychain()))
	must(t, err)
	m, err := pushed.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 2 {
		t.Fatalf("the pushed index holds %d manifests, want 2", len(m.Manifests))
	}
	for _, d := range m.Manifests {
		switch d.Digest.String() {
		case digestOf["amd64"].DigestStr():
			if d.Annotations["io.example/team"] != "builders" || d.Platform == nil || d.Platform.Architecture != "amd64" {
				t.Errorf("amd64 entry: %+v", d)
			}
		case digestOf["arm64"].DigestStr():
			if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != "arm64" || d.Platform.Variant != "v8" {
				t.Errorf("arm64 entry: %+v", d.Platform)
			}
		default:
			t.Errorf("the pushed index holds %s, which was not kept", d.Digest)
		}
		if _, err := ggcrremote.Image(r.Context().Digest(d.Digest.String()), ggcrremote.WithAuthFromKeychain(reg.Keychain())); err != nil {
			t.Errorf("child %s does not resolve: %v", d.Digest, err)
		}
	}
}
