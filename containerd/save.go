package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
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
	desc, err := i.write(ctx, b)
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
func (i *Image) write(ctx context.Context, b *built.Built) (ocispec.Descriptor, error) {
	lctx, done, err := i.client.WithLease(i.nsContext(ctx), leases.WithRandomID(), leases.WithExpiration(leaseExpiry))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("taking a lease: %w", err)
	}
	defer func() { _ = done(context.WithoutCancel(lctx)) }()
	// The manifests of the images opened from the namespace hold what
	// they reference (containerd's garbage collection follows their
	// labels): their blobs stay while the save runs, whatever happens to
	// those images meanwhile.
	for _, m := range i.opened {
		if err := i.lease(lctx, m.String()); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
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
		if held, err := i.has(lctx, d); err != nil || held {
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			continue
		}
		rc, err := openAsIs(l, d, open)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("opening layer %d: %w", j, err)
		}
		r := archive.ReportingReader(rc, d.Digest.String(), d.Size, report)
		err = content.WriteBlob(lctx, cs, "imgutil-"+d.Digest.String(), r, toOCI(d))
		rc.Close()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("writing layer %d: %w", j, commitError(err))
		}
	}
	cfg := v1.Descriptor{MediaType: b.ConfigType(), Size: int64(len(b.RawConfig)), Digest: b.ConfigDigest()}
	diffIDs := make([]digest.Digest, len(b.Config.RootFS.DiffIDs))
	for j, d := range b.Config.RootFS.DiffIDs {
		diffIDs[j] = digest.Digest(d.String())
	}
	var cfgLabels map[string]string
	if !i.skipUnpack && len(diffIDs) > 0 {
		// The image's snapshots, made below, live as long as its config.
		cfgLabels = map[string]string{snapshotLabel(i.snapshotter): topChain(diffIDs).String()}
	}
	if err := writeBytes(lctx, cs, cfg, b.RawConfig, cfgLabels); err != nil {
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
		layers := make([]ocispec.Descriptor, len(descs))
		for j, d := range descs {
			layers[j] = toOCI(d)
		}
		if err := i.unpack(lctx, layers, diffIDs); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("unpacking for %s: %w", i.snapshotter, err)
		}
	}
	return md, nil
}

// openAsIs opens a layer file that is the blob d byte for byte as it is,
// unread here: the content store hashes what it takes and refuses a commit
// whose digest is not d's (see commitError), so the check is made once.
// Other layers are opened with open.
func openAsIs(l v1.Layer, d v1.Descriptor, open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	if s, ok := l.(archive.Source); ok {
		if path, want, ok := s.Source(false); ok && want == d.Digest {
			return os.Open(path)
		}
	}
	return open()
}

// commitError is err of a blob written: content that does not match its
// digest (a layer file whose diffID was given wrong, or that changed since
// it was added) matches imgutil.ErrDiffIDMismatch.
func commitError(err error) error {
	if cerrdefs.IsFailedPrecondition(err) && strings.Contains(err.Error(), "unexpected commit") {
		return fmt.Errorf("%w: %w", imgutil.ErrDiffIDMismatch, err)
	}
	return storeError(err)
}

// has reports whether the store has the blob d. One of an image opened
// from the namespace is held by its manifest; any other is added to the
// save's lease.
func (i *Image) has(ctx context.Context, d v1.Descriptor) (bool, error) {
	_, err := i.client.ContentStore().Info(ctx, toOCI(d).Digest)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up blob %s: %w", d.Digest, err)
	}
	if !i.openedHas(d.Digest) {
		if err := i.lease(ctx, d.Digest.String()); err != nil {
			return false, err
		}
	}
	return true, nil
}

// lease adds the blob dgst to the save's lease.
func (i *Image) lease(ctx context.Context, dgst string) error {
	id, ok := leases.FromContext(ctx)
	if !ok {
		return nil
	}
	if err := i.client.LeasesService().AddResource(ctx, leases.Lease{ID: id}, leases.Resource{ID: dgst, Type: "content"}); err != nil {
		return fmt.Errorf("holding blob %s: %w", dgst, err)
	}
	return nil
}

// writeBytes writes b as the blob d, with labels; a blob the store has
// already gets the labels.
func writeBytes(ctx context.Context, cs content.Store, d v1.Descriptor, b []byte, labels map[string]string) error {
	od := toOCI(d)
	w, err := content.OpenWriter(ctx, cs, content.WithRef("imgutil-"+d.Digest.String()), content.WithDescriptor(od))
	if err == nil {
		defer w.Close()
		if _, err = w.Write(b); err == nil {
			err = w.Commit(ctx, od.Size, od.Digest, content.WithLabels(labels))
		}
	}
	switch {
	case cerrdefs.IsAlreadyExists(err):
		if len(labels) == 0 {
			return nil
		}
		info := content.Info{Digest: od.Digest, Labels: labels}
		var fields []string
		for k := range labels {
			fields = append(fields, "labels."+k)
		}
		_, err = cs.Update(ctx, info, fields...)
		return storeError(err)
	case err != nil:
		return commitError(err)
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
