package remote_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

// A push that reports progress writes the manifest a push without it
// writes: a base layer's annotations are kept either way; the new layer
// reports, once per MiB at most, ending at the size that went.
func TestProgressKeepsTheManifest(t *testing.T) {
	reg := testhelpers.StartRegistry(t)
	l, err := random.Layer(3<<20, types.OCILayer)
	must(t, err)
	base, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer: l, Annotations: map[string]string{"org.example.layer": "base"},
	})
	must(t, err)
	baseRef := reg.Repo("progress/base:1")
	ref, err := name.ParseReference(baseRef)
	must(t, err)
	must(t, ggcrremote.Write(ref, base))

	p, _ := testhelpers.RandomLayerFile(t, 3<<20)
	digests := map[bool]string{}
	for _, withProgress := range []bool{false, true} {
		var updates, ends atomic.Int64
		var last imgutil.Progress
		opts := []imgutil.ImageOption{remote.FromBaseImage(baseRef)}
		if withProgress {
			opts = append(opts, imgutil.WithProgress(func(u imgutil.Progress) {
				updates.Add(1)
				if u.Total > 0 && u.Complete == u.Total {
					ends.Add(1)
				}
				last = u
			}))
		}
		target := reg.Repo(fmt.Sprintf("progress/app-%v:1", withProgress))
		img, err := remote.NewImage(target, authn.DefaultKeychain, opts...)
		must(t, err)
		must(t, img.AddLayer(p))
		must(t, img.Save())
		tref, err := name.ParseReference(target)
		must(t, err)
		desc, err := ggcrremote.Get(tref)
		must(t, err)
		m, err := desc.Image()
		must(t, err)
		mf, err := m.Manifest()
		must(t, err)
		if mf.Layers[0].Annotations["org.example.layer"] != "base" {
			t.Errorf("progress %v: the base layer's annotations are lost: %+v", withProgress, mf.Layers[0])
		}
		digests[withProgress] = desc.Digest.String()
		if withProgress && (updates.Load() == 0 || updates.Load() > 8 || ends.Load() != 1 || last.Complete != mf.Layers[1].Size) {
			t.Errorf("progress: %d updates, %d ends, last %+v; the new layer is %d bytes", updates.Load(), ends.Load(), last, mf.Layers[1].Size)
		}
	}
	if digests[false] != digests[true] {
		t.Errorf("manifest %s with progress, %s without", digests[true], digests[false])
	}
}
