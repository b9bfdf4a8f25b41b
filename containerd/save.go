package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/layer"
)

// leaseExpiry bounds how long the blobs of a save killed half-way are
// kept from containerd's garbage collection.
const leaseExpiry = time.Hour

// Save saves the image under its name and each of additionalNames.
func (i *Image) Save(additionalNames ...string) error {
	return i.SaveAs(i.Name(), additionalNames...)
}

// SaveAs saves the image under name and each of additionalNames.
func (i *Image) SaveAs(name string, additionalNames ...string) error {
	return i.SaveAsContext(context.Background(), name, additionalNames...)
}

// SaveAsContext writes into the content store the blobs it lacks (the
// layers of base and previous images are referenced where they are),
// unpacks the image for the snapshotter, then points each name's record at
// it. Until then no name moves: interrupted, a save leaves each name on
// its old image, and what it wrote is held by a lease that expires.
// Names that failed are listed in an imgutil.SaveError.
func (i *Image) SaveAsContext(ctx context.Context, name string, additionalNames ...string) error {
	names := append([]string{name}, additionalNames...)
	var se imgutil.SaveError
	allFailed := func(err error) error {
		for _, n := range names {
			se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
		return se
	}
	normalized := make([]string, len(names))
	for j, n := range names {
		var err error
		if normalized[j], err = normalize(n); err != nil {
			return allFailed(err)
		}
	}
	b, err := built.ForSave(i.CNBImageCore)
	if err != nil {
		return allFailed(err)
	}
	desc, err := i.write(ctx, b, normalized[0])
	if err != nil {
		return allFailed(err)
	}
	nctx := i.nsContext(ctx)
	for j, n := range normalized {
		if err := i.point(nctx, n, desc); err != nil {
			se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: names[j], Cause: err})
		}
	}
	if len(se.Errors) < len(names) {
		d, _ := v1.NewHash(desc.Digest.String())
		i.mu.Lock()
		i.saved = d
		i.mu.Unlock()
	}
	if len(se.Errors) > 0 {
		return se
	}
	return nil
}

// write puts b's blobs into the content store (those it lacks), under a
// lease, unpacks the image unless asked not to, and returns the manifest's
// descriptor.
func (i *Image) write(ctx context.Context, b *built.Built, name string) (ocispec.Descriptor, error) {
	lctx, done, err := i.client.WithLease(i.nsContext(ctx), leases.WithRandomID(), leases.WithExpiration(leaseExpiry))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("taking a lease: %w", err)
	}
	defer func() { _ = done(context.WithoutCancel(lctx)) }()
	cs := i.client.ContentStore()
	docker := b.ManifestType() == types.DockerManifestSchema2
	report := archive.Reporter(i.progress, "save")
	descs := make([]v1.Descriptor, len(b.Layers))
	for j, l := range b.Layers {
		d, open, err := layer.AsBlob(l, docker)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %w", j, err)
		}
		descs[j] = d
		if held, err := i.hold(lctx, d); err != nil || held {
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			continue
		}
		rc, err := open()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("opening layer %d: %w", j, err)
		}
		r := archive.ReportingReader(rc, d.Digest.String(), d.Size, report)
		err = content.WriteBlob(lctx, cs, "imgutil-"+d.Digest.String(), r, toOCI(d))
		rc.Close()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("writing layer %d: %w", j, storeError(err))
		}
	}
	cfg := v1.Descriptor{MediaType: b.ConfigType(), Size: int64(len(b.RawConfig)), Digest: b.ConfigDigest()}
	if err := writeBytes(lctx, cs, cfg, b.RawConfig, nil); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("writing config: %w", err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: b.ManifestType(), Config: cfg, Layers: descs, Annotations: b.Annotations()}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encoding manifest: %w", err)
	}
	// What the manifest references stays as long as it does.
	refs := map[string]string{"containerd.io/gc.ref.content.config": cfg.Digest.String()}
	for j, d := range descs {
		refs["containerd.io/gc.ref.content.l."+strconv.Itoa(j)] = d.Digest.String()
	}
	md := ocispec.Descriptor{MediaType: string(m.MediaType), Size: int64(len(raw)), Digest: digestOf(raw)}
	mdesc := v1.Descriptor{MediaType: m.MediaType, Size: md.Size}
	mdesc.Digest, _ = v1.NewHash(md.Digest.String())
	if err := writeBytes(lctx, cs, mdesc, raw, refs); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("writing manifest: %w", err)
	}
	if !i.skipUnpack {
		p := ocispec.Platform{OS: b.Config.OS, Architecture: b.Config.Architecture, Variant: b.Config.Variant}
		img := client.NewImageWithPlatform(i.client, images.Image{Name: name, Target: md}, platforms.Only(p))
		if err := img.Unpack(lctx, i.snapshotter); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("unpacking for %s: %w", i.snapshotter, err)
		}
	}
	return md, nil
}

// hold reports whether the store has the blob d, and keeps it for the
// save (it joins the save's lease).
func (i *Image) hold(ctx context.Context, d v1.Descriptor) (bool, error) {
	_, err := i.client.ContentStore().Info(ctx, toOCI(d).Digest)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up blob %s: %w", d.Digest, err)
	}
	if id, ok := leases.FromContext(ctx); ok {
		if err := i.client.LeasesService().AddResource(ctx, leases.Lease{ID: id}, leases.Resource{ID: d.Digest.String(), Type: "content"}); err != nil {
			return false, fmt.Errorf("holding blob %s: %w", d.Digest, err)
		}
	}
	return true, nil
}

// writeBytes writes b as the blob d, with labels, unless the store has it
// (its labels are then set).
func writeBytes(ctx context.Context, cs content.Store, d v1.Descriptor, b []byte, labels map[string]string) error {
	var opts []content.Opt
	if labels != nil {
		opts = append(opts, content.WithLabels(labels))
	}
	err := content.WriteBlob(ctx, cs, "imgutil-"+d.Digest.String(), bytesReader(b), toOCI(d), opts...)
	if err != nil {
		return storeError(err)
	}
	if labels != nil {
		info := content.Info{Digest: toOCI(d).Digest, Labels: labels}
		var fields []string
		for k := range labels {
			fields = append(fields, "labels."+k)
		}
		if _, err := cs.Update(ctx, info, fields...); err != nil {
			return storeError(err)
		}
	}
	return nil
}

// point makes the record name point at desc: created, or updated keeping
// its labels.
func (i *Image) point(ctx context.Context, name string, desc ocispec.Descriptor) error {
	is := i.client.ImageService()
	rec := images.Image{Name: name, Target: desc}
	for range 3 {
		_, err := is.Update(ctx, rec, "target")
		if !cerrdefs.IsNotFound(err) {
			return err
		}
		_, err = is.Create(ctx, rec)
		if !cerrdefs.IsAlreadyExists(err) {
			return err
		}
		// Created meanwhile by another save: update it.
	}
	return fmt.Errorf("image %s keeps being created and removed while saving", name)
}
