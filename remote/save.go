package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/layer"
)

// Save pushes the image under its name and additionalNames.
func (i *Image) Save(additionalNames ...string) error {
	return i.SaveAs(i.Name(), additionalNames...)
}

// SaveAs pushes the image under name and additionalNames, uploading only
// the blobs each repository lacks (mounting blobs from the base image's
// repository where the registry allows). Names that failed are listed in
// an imgutil.SaveError.
func (i *Image) SaveAs(name string, additionalNames ...string) error {
	return i.SaveAsContext(context.Background(), name, additionalNames...)
}

// SaveAsContext is SaveAs with a context.
func (i *Image) SaveAsContext(ctx context.Context, imageName string, additionalNames ...string) error {
	if i.addEmptyLayerOnSave {
		if _, err := i.TopLayer(); errors.Is(err, imgutil.ErrNotFound) {
			if err := i.AddLayerWithHistory(emptyLayer(), v1.History{CreatedBy: "imgutil: empty layer"}); err != nil {
				return err
			}
		}
	}
	b, err := built.ForSave(i.CNBImageCore)
	if err != nil {
		return imgutil.SaveError{Errors: []imgutil.SaveDiagnostic{{ImageName: imageName, Cause: err}}}
	}
	// A registry out of reach is told before any layer is read (a layer
	// of a daemon's is read and compressed to learn what to push): its
	// names fail, the others are pushed.
	var diags []imgutil.SaveDiagnostic
	var names []string
	out := map[string]error{} // by registry
	for _, n := range append([]string{imageName}, additionalNames...) {
		reg := n
		if ref, err := i.access.ref(n); err == nil {
			reg = ref.Context().RegistryStr()
		}
		err, asked := out[reg]
		if !asked {
			err = i.reachable(ctx, n)
			out[reg] = err
		}
		if err != nil {
			diags = append(diags, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return imgutil.SaveError{Errors: diags}
	}
	img, err := pushable(b, i.sums, serialized(i.progress))
	if err != nil {
		return imgutil.SaveError{Errors: []imgutil.SaveDiagnostic{{ImageName: imageName, Cause: err}}}
	}
	pushed := map[string]name.Reference{}
	for _, n := range names {
		if err := i.push(ctx, img, n, pushed); err != nil {
			diags = append(diags, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
	}
	// The manifest pushed, its compressed digests learnt while uploading.
	if len(pushed) > 0 {
		if d, err := img.Digest(); err == nil {
			i.mu.Lock()
			i.pushed.config, i.pushed.digest = b.ConfigDigest(), d
			i.mu.Unlock()
		}
	}
	if len(diags) > 0 {
		return imgutil.SaveError{Errors: diags}
	}
	return nil
}

// reachable asks the registry of n for n's manifest: any answer (found,
// not found, refused) says it is there; no answer is the error.
func (i *Image) reachable(ctx context.Context, n string) error {
	ref, err := i.access.ref(n)
	if err != nil {
		return err
	}
	_, err = remote.Head(ref, i.access.options(ctx, ref, i.platform)...)
	var te *transport.Error
	if err == nil || errors.As(err, &te) {
		return nil
	}
	return registryError("reaching the registry of "+n, err)
}

// pushable is b with its new layers lazy: their compressed digest is learnt
// while they upload, so each is read and compressed once (the manifest,
// which needs the digests, goes last). Layers stored uncompressed (read
// from a daemon) are pushed gzip-compressed the same way, their digests
// kept in sums.
// With report, each layer uploaded reports its bytes (see reporting).
func pushable(b *built.Built, sums *layer.Sums, report func(imgutil.Progress)) (v1.Image, error) {
	layers := make([]v1.Layer, len(b.Layers))
	lazy := false
	gzipType := imgutil.MediaTypesOf(b.ManifestType()).LayerType()
	for j, l := range b.Layers {
		layers[j] = layer.Lazy(l)
		if mt, err := l.MediaType(); err == nil && layers[j] == l && gzipType != "" &&
			(mt == types.DockerUncompressedLayer || mt == types.OCIUncompressedLayer) {
			// A layer stored uncompressed (a daemon's) goes compressed.
			g, err := layer.LazyGzip(l, gzipType, sums)
			if err != nil {
				return nil, err
			}
			layers[j] = g
		}
		layers[j] = reporting(layers[j], report)
		lazy = lazy || layers[j] != l
	}
	if !lazy {
		return b.Image(), nil
	}
	p, err := built.WithLayers(b.Config, b.RawConfig, layers, b.ManifestType(), b.ConfigType(), b.Annotations())
	if err != nil {
		return nil, err
	}
	return p.Image(), nil
}

// push writes img under n: in a repository it was pushed to already, only
// the tag is written.
func (i *Image) push(ctx context.Context, img v1.Image, n string, pushed map[string]name.Reference) error {
	ref, err := i.access.ref(n)
	if err != nil {
		return err
	}
	opts := i.access.options(ctx, ref, i.platform)
	repo := ref.Context().Name()
	if _, ok := pushed[repo]; ok {
		if tag, isTag := ref.(name.Tag); isTag {
			return registryError("tagging "+n, remote.Tag(tag, img, opts...))
		}
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		return registryError("pushing "+n, err)
	}
	pushed[repo] = ref
	return nil
}

// emptyLayer is a layer holding an empty tar.
func emptyLayer() v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.Close()
	return static.NewLayer(buf.Bytes(), "application/vnd.docker.image.rootfs.diff.tar")
}

// SaveFile writes the image as a `docker load`-able tar tagged with its
// name and returns the path; no partial file is left on failure.
func (i *Image) SaveFile() (string, error) {
	return i.SaveFileContext(context.Background())
}

// SaveFileContext is SaveFile stopped (leaving no file) once ctx is done.
func (i *Image) SaveFileContext(ctx context.Context) (string, error) {
	b, err := built.ForSave(i.CNBImageCore)
	if err != nil {
		return "", err
	}
	return archive.WriteTaggedImageFile(ctx, b, i.Name(), "imgutil-remote-*.tar", archive.Reporter(i.progress, "export"))
}
