package local

import (
	"context"
	"crypto/rand"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/built"
)

// probeLabel marks the short-lived images probeImage loads (its value is
// unique to each, so no two probes are ever one image).
const probeLabel = "io.imgbridge.imgutil.probe"

// probeImage loads into the daemon an image made of the first n layers of
// img and nothing else, under a fresh name, and returns that name and a
// function removing it. The nonce it returns is in its config, which
// legacy archives copy into the top layer's json. An ImageSave of it carries only those n layers: on
// daemons that build the whole archive before sending a byte (the classic
// store, Podman), reading a layer near the bottom of a big image then
// costs a fraction of a full save. Nothing is sent: the daemon holds every
// layer. The containerd store streams its archive as it reads it, but in
// the order of the blob digests, so the wanted layer may come last: there
// the probe references the blobs the store holds for img (asked for only
// when its manifest is known), and carries nothing either.
func (s *Store) probeImage(ctx context.Context, img *daemonImage, n int) (name, nonce string, release func(), err error) {
	nonce = strings.ToLower(rand.Text()[:16])
	cfg := &v1.ConfigFile{
		OS: img.cfg.OS, Architecture: img.cfg.Architecture, Variant: img.cfg.Variant, OSVersion: img.cfg.OSVersion,
		RootFS: v1.RootFS{Type: "layers", DiffIDs: img.cfg.RootFS.DiffIDs[:n]},
		Config: v1.Config{Labels: map[string]string{probeLabel: nonce}},
	}
	layers := make([]v1.Layer, n)
	for i := range n {
		layers[i] = img.layers[i]
	}
	b, err := built.New(cfg, layers, types.DockerManifestSchema2, types.DockerConfigJSON, nil)
	if err != nil {
		return "", "", nil, err
	}
	tag := ownedTag()
	name = probeRepo + "/" + nonce + ":" + tag
	s.ledger.made(tag)
	release = func() {
		// Removed even when the caller gave up meanwhile.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, err := s.client.ImageRemove(rctx, name, client.ImageRemoveOptions{Force: true})
		s.forget(tag, err)
	}
	// Every layer is left out: the image was opened from the daemon. A
	// probe never falls back to sending them (reading them is what it
	// spares).
	k, err := s.kindFor(ctx, []*daemonImage{img})
	if err == nil {
		_, err = k.loadPartial(ctx, s, b, name)
	}
	if err != nil {
		release()
		return "", "", nil, err
	}
	return name, nonce, release, nil
}

// probeWorthIt reports whether reading layers up to index last (of n) is
// worth a probe image: only when it leaves out a quarter of the layers.
func probeWorthIt(last, n int) bool { return last >= 0 && (last+1)*4 <= n*3 }

// defaultProbeMinSize is the image size from which a probe image is worth
// its three calls (load, save, remove: 50-100 ms on Debian's 20.10): a
// full export there costs about 9 ms a MiB. Each Store holds its own.
const defaultProbeMinSize int64 = 32 << 20
