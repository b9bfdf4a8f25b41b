package containerd

import (
	"context"
	"fmt"
	"runtime"
	"strconv"

	"github.com/containerd/containerd/v2/client"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// SaveIndex saves idx, a multi-platform image, into the namespace under
// name: the index, and every platform's manifest, config and layers (the
// blobs the store lacks, layers as they are compressed), under a lease;
// unpacks for the snapshotter the platforms UnpackPlatforms names, else
// the one imgutil.WithDefaultPlatform names, else this machine's (none
// the index lacks; none with WithoutUnpack); then points name at the
// index. It returns the index digest. Options: WithNamespace,
// WithSnapshotter, WithoutUnpack, UnpackPlatforms,
// imgutil.WithDefaultPlatform, imgutil.WithProgress. The index's children must be images (a nested
// index is refused, imgutil.ErrInvalidArgument). As a save, it moves no
// name until everything is stored.
func SaveIndex(ctx context.Context, c *client.Client, name string, idx v1.ImageIndex, ops ...imgutil.ImageOption) (v1.Hash, error) {
	o, own, normalized, err := begin(name, ops)
	if err != nil {
		return v1.Hash{}, err
	}
	if c == nil {
		return v1.Hash{}, fmt.Errorf("no containerd client: %w", imgutil.ErrInvalidArgument)
	}
	i := &Image{client: c, namespace: own.namespace, snapshotter: own.snapshotter, skipUnpack: own.skipUnpack, progress: o.Progress, name: name}
	rawIndex, err := idx.RawManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the index: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the index: %w", err)
	}
	wants := own.unpack
	if len(wants) == 0 {
		want := o.Platform
		if want.OS == "" {
			want.OS = "linux"
		}
		if want.Architecture == "" {
			want.Architecture = runtime.GOARCH
		}
		wants = []imgutil.Platform{want}
	}
	// The manifests to unpack: the first of each platform wanted.
	unpackAt := map[int]bool{}
	for _, want := range wants {
		for j, d := range im.Manifests {
			if d.Platform != nil && d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture &&
				(want.Variant == "" || d.Platform.Variant == want.Variant) {
				unpackAt[j] = true
				break
			}
		}
	}
	children, err := built.Children(idx)
	if err != nil {
		return v1.Hash{}, err
	}

	i.sweepLeases(i.nsContext(ctx))
	lctx, done, err := takeLease(i.nsContext(ctx), c.LeasesService())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("taking a lease: %w", err)
	}
	defer done()
	var snapshotter string
	if !i.skipUnpack && len(unpackAt) > 0 {
		if snapshotter, err = i.snapshotterName(lctx); err != nil {
			return v1.Hash{}, err
		}
	}
	report := archive.Reporter(i.progress, "save")
	// Each platform's blobs, at once: layers and config, then its
	// manifest, labelled so that garbage collection follows it to them.
	g, gctx := errgroup.WithContext(lctx)
	g.SetLimit(parallelWrites)
	// What each platform to unpack unpacks: its layers and their diffIDs.
	type unpacking struct {
		layers  []ocispec.Descriptor
		diffIDs []digest.Digest
	}
	var unpacks []unpacking
	// A blob two platforms share is written once.
	written := map[v1.Hash]bool{}
	for j, ch := range children {
		d, m, cf, raw, rawConfig, layers := ch.Descriptor, ch.Manifest, ch.Config, ch.RawManifest, ch.RawConfig, ch.Layers
		var configLabels map[string]string
		if unpackAt[j] && snapshotter != "" && len(cf.RootFS.DiffIDs) > 0 {
			var u unpacking
			for k, l := range m.Layers {
				u.layers = append(u.layers, toOCI(l))
				u.diffIDs = append(u.diffIDs, digest.Digest(cf.RootFS.DiffIDs[k].String()))
			}
			unpacks = append(unpacks, u)
			// The platform's snapshots live as long as its config.
			configLabels = map[string]string{snapshotLabel(snapshotter): topChain(u.diffIDs).String()}
		}
		for k, l := range layers {
			ld := m.Layers[k]
			if written[ld.Digest] {
				continue
			}
			written[ld.Digest] = true
			g.Go(func() error {
				return i.writeLayer(gctx, l, ld, l.Compressed, report)
			})
		}
		g.Go(func() error {
			if err := i.writeBytes(gctx, toOCI(m.Config), rawConfig, configLabels); err != nil {
				return fmt.Errorf("writing config %s: %w", m.Config.Digest, err)
			}
			return nil
		})
		refs := map[string]string{"containerd.io/gc.ref.content.config": m.Config.Digest.String()}
		for k, l := range m.Layers {
			refs["containerd.io/gc.ref.content.l."+strconv.Itoa(k)] = l.Digest.String()
		}
		md := ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
		g.Go(func() error {
			if err := i.writeBytes(gctx, md, raw, refs); err != nil {
				return fmt.Errorf("writing manifest %s: %w", d.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return v1.Hash{}, err
	}
	indexDigest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	refs := map[string]string{}
	for j, d := range im.Manifests {
		refs["containerd.io/gc.ref.content.m."+strconv.Itoa(j)] = d.Digest.String()
	}
	id := ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(indexDigest.String()), Size: int64(len(rawIndex))}
	if err := i.writeBytes(lctx, id, rawIndex, refs); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the index: %w", err)
	}
	for _, u := range unpacks {
		if err := i.unpack(lctx, snapshotter, u.layers, u.diffIDs); err != nil {
			return v1.Hash{}, fmt.Errorf("unpacking for %s: %w", snapshotter, err)
		}
	}
	if err := i.point(lctx, normalized, id); err != nil {
		return v1.Hash{}, fmt.Errorf("naming %s: %w", name, storeError(err))
	}
	return indexDigest, nil
}
