package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/internal/owner"
)

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
	// The lease keeps what the save writes until a record references it
	// (released only after the names point at the image).
	i.sweepLeases(i.nsContext(ctx))
	lctx, done, err := takeLease(i.nsContext(ctx), i.client.LeasesService())
	if err != nil {
		return allFailed(fmt.Errorf("taking a lease: %w", err))
	}
	defer done()
	desc, err := i.write(lctx, b)
	if err != nil {
		return allFailed(err)
	}
	for j, n := range normalized {
		if err := i.point(lctx, n, desc); err != nil {
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

// write puts b's blobs into the content store (those it lacks), under the
// lease of lctx, unpacks the image unless asked not to, and returns the
// manifest's descriptor.
func (i *Image) write(lctx context.Context, b *built.Built) (ocispec.Descriptor, error) {
	var err error
	var snapshotter string
	if !i.skipUnpack {
		if snapshotter, err = i.snapshotterName(lctx); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	// Every blob's descriptor is known before anything is written (a new
	// layer's digest is its diffID), so the manifest need not wait.
	docker := b.ManifestType() == types.DockerManifestSchema2
	descs := make([]v1.Descriptor, len(b.Layers))
	opens := make([]func() (io.ReadCloser, error), len(b.Layers))
	for j, l := range b.Layers {
		if descs[j], opens[j], err = layer.AsBlob(l, docker); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %w", j, err)
		}
	}
	// New layers are compressed first (unless asked not to): their
	// digests go in the manifest. One whose gzip digest is known is only
	// described; it is written below if the store lacks it.
	written := make([]bool, len(b.Layers))
	// layerLabels are those of the compressed forms of new layers (their
	// diffIDs), for a later save to find them.
	layerLabels := make([]map[string]string, len(b.Layers))
	if i.compression != Uncompressed {
		// Forms an earlier save stored, of the layers whose digest the
		// cache does not know, are looked up at once.
		var unknown []v1.Hash
		for j := range b.Layers {
			if i.newLayer(descs[j]) && !i.sumKnown(descs[j].Digest) {
				unknown = append(unknown, descs[j].Digest)
			}
		}
		stored := i.storedForms(lctx, unknown)
		cg, cctx := errgroup.WithContext(lctx)
		cg.SetLimit(parallelWrites)
		for j, l := range b.Layers {
			if !i.newLayer(descs[j]) {
				continue
			}
			plain := descs[j]
			cg.Go(func() error {
				cb, err := i.compress(cctx, l, plain, docker, stored[plain.Digest])
				if err != nil {
					return fmt.Errorf("layer %d: %w", j, err)
				}
				descs[j], written[j] = cb.desc, cb.written
				layerLabels[j] = i.formLabels(plain.Digest)
				opens[j] = func() (io.ReadCloser, error) { return i.openCompressed(l) }
				return nil
			})
		}
		if err := cg.Wait(); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	diffIDs := make([]digest.Digest, len(b.Config.RootFS.DiffIDs))
	for j, d := range b.Config.RootFS.DiffIDs {
		diffIDs[j] = digest.Digest(d.String())
	}
	cfg := v1.Descriptor{MediaType: b.ConfigType(), Size: int64(len(b.RawConfig)), Digest: b.ConfigDigest()}
	m := v1.Manifest{SchemaVersion: 2, MediaType: b.ManifestType(), Config: cfg, Layers: descs, Annotations: b.Annotations()}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encoding manifest: %w", err)
	}
	md := ocispec.Descriptor{MediaType: string(m.MediaType), Size: int64(len(raw)), Digest: digest.FromBytes(raw)}

	// The blobs go in at once (each a round trip or a transaction of its
	// own in containerd): the holds on the images opened, the layers the
	// store lacks, the config, the manifest.
	g, gctx := errgroup.WithContext(lctx)
	g.SetLimit(parallelWrites)
	var reused []v1.Hash
	for _, d := range descs {
		if i.openedHas(d.Digest) {
			reused = append(reused, d.Digest)
		}
	}
	report := archive.Reporter(i.progress, "save")
	if report != nil {
		// Layers are written at once; the caller's function is called
		// by one at a time.
		var mu sync.Mutex
		one := report
		report = func(item string, done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			one(item, done, total)
		}
	}
	for j, l := range b.Layers {
		if written[j] {
			continue
		}
		g.Go(func() error {
			return i.writeLayer(gctx, l, descs[j], opens[j], report, content.WithLabels(layerLabels[j]))
		})
	}
	g.Go(func() error {
		var labels map[string]string
		if !i.skipUnpack && len(diffIDs) > 0 {
			// The image's snapshots, made below, live as long as its config.
			labels = map[string]string{snapshotLabel(snapshotter): topChain(diffIDs).String()}
		}
		if err := i.writeBytes(gctx, toOCI(cfg), b.RawConfig, labels); err != nil {
			return fmt.Errorf("writing config: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// What the manifest references stays as long as it does.
		refs := map[string]string{"containerd.io/gc.ref.content.config": cfg.Digest.String()}
		for j, d := range descs {
			refs["containerd.io/gc.ref.content.l."+strconv.Itoa(j)] = d.Digest.String()
		}
		if err := i.writeBytes(gctx, md, raw, refs); err != nil {
			return fmt.Errorf("writing manifest: %w", err)
		}
		// Held by the manifest from now on: check they are there.
		return i.checkReused(gctx, reused)
	})
	if err := g.Wait(); err != nil {
		return ocispec.Descriptor{}, err
	}
	if !i.skipUnpack {
		layers := make([]ocispec.Descriptor, len(descs))
		for j, d := range descs {
			layers[j] = toOCI(d)
		}
		if err := i.unpack(lctx, snapshotter, layers, diffIDs); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("unpacking for %s: %w", snapshotter, err)
		}
	}
	return md, nil
}

// parallelWrites bounds the blobs a save writes (or looks up) at once.
const parallelWrites = 8

// writeLayer writes the layer l as the blob d. A blob an image opened from
// the namespace lists is held and checked (see checkReused), not written.
// Any other the store has already is taken by the content store without a
// byte sent, and held by the save's lease (containerd adds an existing
// blob to the lease of a writer that asks for it); the layer is opened only
// when its bytes are read.
func (i *Image) writeLayer(ctx context.Context, l v1.Layer, d v1.Descriptor, open func() (io.ReadCloser, error), report func(string, int64, int64), opts ...content.Opt) error {
	if i.openedHas(d.Digest) {
		return nil // see checkReused
	}
	rc := &lazyReader{open: func() (io.ReadCloser, error) { return openAsIs(l, d, open) }}
	defer func() { _ = rc.Close() }()
	r := archive.ReportingReader(rc, d.Digest.String(), d.Size, report)
	if err := i.writeBlob(ctx, toOCI(d), r, opts...); err != nil && !cerrdefs.IsAlreadyExists(err) {
		return fmt.Errorf("writing layer %s: %w", d.Digest, err)
	}
	return nil
}

// checkReused checks that the blobs reused (listed by the images opened
// from the namespace, not written) are still stored: an image removed
// since it was opened, and garbage collection, may have taken them. It is
// called once the save's manifest is in the store under the save's lease:
// garbage collection follows the manifest's labels to every blob it lists,
// so none can go between the check and the save's end (holding them one by
// one would cost a transaction each). The lookups are read-only, at once.
func (i *Image) checkReused(ctx context.Context, reused []v1.Hash) error {
	var g errgroup.Group
	g.SetLimit(parallelWrites)
	for _, d := range reused {
		g.Go(func() error {
			_, err := i.client.ContentStore().Info(ctx, digest.Digest(d.String()))
			switch {
			case cerrdefs.IsNotFound(err):
				return fmt.Errorf("layer %s of the base or previous image is no longer in namespace %s (the image was removed, and garbage collected, since it was opened): %w",
					d, i.namespace, imgutil.ErrNotFound)
			case err != nil:
				return fmt.Errorf("looking up layer %s: %w", d, storeError(err))
			}
			return nil
		})
	}
	return g.Wait()
}

// lazyReader opens its source at its first read.
type lazyReader struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.rc == nil {
		rc, err := l.open()
		if err != nil {
			return 0, fmt.Errorf("opening layer: %w", err)
		}
		l.rc = rc
	}
	return l.rc.Read(p)
}

func (l *lazyReader) Close() error {
	if l.rc == nil {
		return nil
	}
	return l.rc.Close()
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

// sweepLeases removes, once per process, containerd and namespace, the
// leases of saves whose process is gone (killed half-way: see
// internal/owner; a lease of another pid space goes when it expires), so
// that what they held goes with the next garbage collection. Failures
// only leave them to their expiry.
func (i *Image) sweepLeases(ctx context.Context) {
	key := i.nsKey()
	if _, done := sweptLeases.Load(key); done {
		return
	}
	ls := i.client.LeasesService()
	list, err := ls.List(ctx, `id~="^`+leasePrefix+`"`)
	if err != nil {
		return
	}
	sweptLeases.Store(key, true)
	for _, l := range list {
		token, ok := strings.CutPrefix(l.ID, leasePrefix)
		if ok && owner.Stale(token, time.Time{}, leaseTerm) {
			_ = ls.Delete(ctx, l)
		}
	}
}

// sweptLeases are the containerd and namespace pairs sweepLeases looked at.
var sweptLeases sync.Map // nsKey -> true

// lease adds the blob dgst to the save's lease.
func (i *Image) lease(ctx context.Context, dgst string) error {
	id, ok := leases.FromContext(ctx)
	if !ok {
		return nil
	}
	if err := i.client.LeasesService().AddResource(ctx, leases.Lease{ID: id}, leases.Resource{ID: dgst, Type: "content"}); err != nil {
		return fmt.Errorf("holding blob %s: %w", dgst, storeError(err))
	}
	return nil
}

// writeBytes writes b as the blob od, with labels; a blob the store has
// already gets the labels.
func (i *Image) writeBytes(ctx context.Context, od ocispec.Descriptor, b []byte, labels map[string]string) error {
	err := i.writeBlob(ctx, od, bytes.NewReader(b), content.WithLabels(labels))
	if !cerrdefs.IsAlreadyExists(err) {
		return err
	}
	if len(labels) == 0 {
		return nil
	}
	info := content.Info{Digest: od.Digest, Labels: labels}
	var fields []string
	for k := range labels {
		fields = append(fields, "labels."+k)
	}
	_, err = i.client.ContentStore().Update(ctx, info, fields...)
	return storeError(err)
}

// writeBlob writes the blob od from r under the save's lease (ctx's),
// unless the store has it; then it returns an error matching
// AlreadyExists, and the blob is held by the lease all the same:
// containerd adds a blob found when the writer opens to the writer's
// lease, and one committed by another writer meanwhile (found at the
// commit) is added here. A commit whose bytes are not od's digest fails
// with imgutil.ErrDiffIDMismatch (see commitError).
func (i *Image) writeBlob(ctx context.Context, od ocispec.Descriptor, r io.Reader, opts ...content.Opt) error {
	cs := i.client.ContentStore()
	ref := "imgutil-" + od.Digest.String()
	w, err := content.OpenWriter(ctx, cs, content.WithRef(ref), content.WithDescriptor(od))
	if err != nil {
		return commitError(err)
	}
	defer w.Close()
	// An ingest left by a writer that died is started over.
	if err := w.Truncate(0); err != nil {
		return storeError(err)
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	err = w.Commit(ctx, od.Size, od.Digest, opts...)
	if cerrdefs.IsAlreadyExists(err) {
		// Committed by another writer between our open and our commit.
		if lerr := i.lease(ctx, od.Digest.String()); lerr != nil {
			return lerr
		}
		return err
	}
	return commitError(err)
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
