package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
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

// DigestIdentifier identifies an image in a registry: repository@digest.
type DigestIdentifier struct {
	Digest name.Digest
}

// String returns repository@digest.
func (d DigestIdentifier) String() string { return d.Digest.String() }

// Image is an image in a registry.
type Image struct {
	*imgutil.CNBImageCore

	access              access
	platform            imgutil.Platform
	addEmptyLayerOnSave bool
	progress            func(imgutil.Progress)

	// mu guards repoName.
	mu       sync.Mutex
	repoName string
}

var (
	_ imgutil.Image = (*Image)(nil)
	_ v1.Image      = (*Image)(nil)
)

// NewImage returns an image named repoName in a registry, reached with the
// credentials of keychain (authn.DefaultKeychain when nil).
func NewImage(repoName string, keychain authn.Keychain, ops ...imgutil.ImageOption) (*Image, error) {
	return NewImageContext(context.Background(), repoName, keychain, ops...)
}

// NewImageContext is NewImage with a context for the registry requests it
// makes.
func NewImageContext(ctx context.Context, repoName string, keychain authn.Keychain, ops ...imgutil.ImageOption) (*Image, error) {
	var o imgutil.ImageOptions
	for _, op := range ops {
		op(&o)
	}
	a := newAccess(keychain, o.RegistrySettings)
	if _, err := a.ref(repoName); err != nil {
		return nil, err
	}
	var err error
	if o.BaseImage == nil && o.BaseImageRepoName != "" {
		if o.BaseImage, err = a.openOptional(ctx, o.BaseImageRepoName, o.Platform); err != nil {
			return nil, fmt.Errorf("reading base image: %w", err)
		}
	}
	if o.PreviousImage == nil && o.PreviousImageRepoName != "" {
		if o.PreviousImage, err = a.openOptional(ctx, o.PreviousImageRepoName, o.Platform); err != nil {
			return nil, fmt.Errorf("reading previous image: %w", err)
		}
	}
	core, err := imgutil.NewCNBImage(o)
	if err != nil {
		return nil, err
	}
	return &Image{CNBImageCore: core, access: a, platform: o.Platform, addEmptyLayerOnSave: o.AddEmptyLayerOnSave, progress: o.Progress, repoName: repoName}, nil
}

// NewV1Image returns the registry image baseImageRepoName (the manifest
// of WithDefaultPlatform for an index) as a go-containerregistry image, or
// an empty image when the registry does not have it.
func NewV1Image(baseImageRepoName string, keychain authn.Keychain, ops ...func(*imgutil.ImageOptions)) (v1.Image, error) {
	var o imgutil.ImageOptions
	for _, op := range ops {
		op(&o)
	}
	img, err := newAccess(keychain, o.RegistrySettings).openOptional(context.Background(), baseImageRepoName, o.Platform)
	if err != nil || img != nil {
		return img, err
	}
	core, err := imgutil.NewCNBImage(o)
	if err != nil {
		return nil, err
	}
	return core.UnderlyingImage(), nil
}

// openOptional reads the image name, nil when the registry lacks it. For
// an index, the manifest of platform p; an index with none for p is taken
// as missing too (the image then starts empty, with that platform).
func (a access) openOptional(ctx context.Context, s string, p imgutil.Platform) (v1.Image, error) {
	ref, err := a.ref(s)
	if err != nil {
		return nil, err
	}
	opts := a.options(ctx, ref, p)
	desc, err := remote.Get(ref, opts...)
	err = registryError("reading "+s, err)
	if errors.Is(err, imgutil.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, registryError("reading index "+s, err)
		}
		has, err := hasPlatform(idx, requested(p))
		if err != nil {
			return nil, registryError("reading index "+s, err)
		}
		if !has {
			return nil, nil
		}
	}
	img, err := desc.Image()
	return img, registryError("reading "+s, err)
}

// requested is the platform asked of an index: p, linux and this program's
// architecture by default.
func requested(p imgutil.Platform) v1.Platform {
	v := v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
	if v.OS == "" {
		v.OS = "linux"
	}
	if v.Architecture == "" {
		v.Architecture = runtime.GOARCH
	}
	return v
}

// hasPlatform reports whether idx has an image manifest for p.
func hasPlatform(idx v1.ImageIndex, p v1.Platform) (bool, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return false, err
	}
	for _, d := range m.Manifests {
		if d.MediaType.IsImage() && d.Platform != nil && d.Platform.Satisfies(p) {
			return true, nil
		}
	}
	return false, nil
}

// Kind returns "remote".
func (i *Image) Kind() string { return "remote" }

// Name returns the name the image is saved under.
func (i *Image) Name() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.repoName
}

// Rename changes the name the image is saved under.
func (i *Image) Rename(name string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.repoName = name
}

// Found reports whether the registry has an image under the image's name.
// A registry that cannot be asked (or refuses the credentials) reports
// false: FoundE tells the difference.
func (i *Image) Found() bool {
	ok, _ := i.FoundE(context.Background())
	return ok
}

// FoundE reports whether the registry has an image under the image's name;
// refused credentials (imgutil.ErrUnauthorized) or an unreachable registry
// (ErrRegistryUnreachable) are errors, not "missing".
func (i *Image) FoundE(ctx context.Context) (bool, error) {
	ref, err := i.access.ref(i.Name())
	if err != nil {
		return false, err
	}
	_, err = remote.Head(ref, i.access.options(ctx, ref, i.platform)...)
	err = registryError("looking up "+i.Name(), err)
	if errors.Is(err, imgutil.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Valid reports whether the registry has the image and every blob of it.
func (i *Image) Valid() bool {
	ok, _ := i.ValidE(context.Background())
	return ok
}

// ValidE is Valid with the reason it could not tell. A multi-platform
// index is valid when it and each of its images are, whatever the default
// platform.
func (i *Image) ValidE(ctx context.Context) (bool, error) {
	ref, err := i.access.ref(i.Name())
	if err != nil {
		return false, err
	}
	desc, err := remote.Get(ref, i.access.options(ctx, ref, i.platform)...)
	if err = registryError("reading "+i.Name(), err); err != nil {
		if errors.Is(err, imgutil.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return false, registryError("reading "+i.Name(), err)
		}
		return i.blobsExist(ctx, ref, img)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return false, registryError("reading index "+i.Name(), err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return false, registryError("reading index "+i.Name(), err)
	}
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return false, registryError("reading "+d.Digest.String()+" of "+i.Name(), err)
		}
		if ok, err := i.blobsExist(ctx, ref, img); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// blobsExist reports whether the repository of ref holds the config and
// every layer of img.
func (i *Image) blobsExist(ctx context.Context, ref name.Reference, img v1.Image) (bool, error) {
	m, err := img.Manifest()
	if err != nil {
		return false, registryError("reading manifest of "+i.Name(), err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		ok, err := i.blobExists(ctx, ref, d.Digest)
		if !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// blobExists asks the registry (HEAD) whether repository ref has blob h.
func (i *Image) blobExists(ctx context.Context, ref name.Reference, h v1.Hash) (bool, error) {
	repo := ref.Context()
	auth, err := i.access.keychain.Resolve(repo)
	if err != nil {
		return false, fmt.Errorf("resolving credentials: %w", err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, imgutil.GetTransport(i.access.insecure(ref)), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return false, registryError("reaching "+repo.RegistryStr(), err)
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), h)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return false, registryError("checking blob "+h.String(), err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// Identifier returns repository@digest of the image as edited.
func (i *Image) Identifier() (imgutil.Identifier, error) {
	ref, err := i.access.ref(i.Name())
	if err != nil {
		return nil, err
	}
	d, err := i.Digest()
	if err != nil {
		return nil, err
	}
	return DigestIdentifier{Digest: ref.Context().Digest(d.String())}, nil
}

// Delete removes the manifest under the image's name from the registry.
func (i *Image) Delete() error {
	ctx := context.Background()
	ref, err := i.access.ref(i.Name())
	if err != nil {
		return err
	}
	opts := i.access.options(ctx, ref, i.platform)
	// GET, not HEAD: a missing image gets the registry's own answer
	// (MANIFEST_UNKNOWN, NAME_UNKNOWN), which callers match.
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return registryError("looking up "+i.Name(), err)
	}
	return registryError("deleting "+i.Name(), remote.Delete(ref.Context().Digest(desc.Digest.String()), opts...))
}

// CheckReadAccess reports whether the image's repository can be read with
// the credentials at hand (true also when the image does not exist yet).
func (i *Image) CheckReadAccess() (bool, error) {
	_, err := i.FoundE(context.Background())
	if errors.Is(err, imgutil.ErrUnauthorized) {
		return false, nil
	}
	return err == nil, err
}

// CheckReadWriteAccess reports whether the image's repository can be
// pushed to with the credentials at hand.
func (i *Image) CheckReadWriteAccess() (bool, error) {
	if ok, err := i.CheckReadAccess(); !ok || err != nil {
		return ok, err
	}
	ref, err := i.access.ref(i.Name())
	if err != nil {
		return false, err
	}
	err = registryError("checking push access to "+i.Name(),
		remote.CheckPushPermission(ref, i.access.keychain, imgutil.GetTransport(i.access.insecure(ref))))
	if errors.Is(err, imgutil.ErrUnauthorized) {
		return false, nil
	}
	return err == nil, err
}

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
	b, err := i.BuildForSave()
	if err != nil {
		return imgutil.SaveError{Errors: []imgutil.SaveDiagnostic{{ImageName: imageName, Cause: err}}}
	}
	img, err := pushable(b)
	if err != nil {
		return imgutil.SaveError{Errors: []imgutil.SaveDiagnostic{{ImageName: imageName, Cause: err}}}
	}
	var diags []imgutil.SaveDiagnostic
	pushed := map[string]name.Reference{}
	for _, n := range append([]string{imageName}, additionalNames...) {
		if err := i.push(ctx, img, n, pushed); err != nil {
			diags = append(diags, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
	}
	if len(diags) > 0 {
		return imgutil.SaveError{Errors: diags}
	}
	return nil
}

// pushable is b with its new layers lazy: their compressed digest is learnt
// while they upload, so each is read and compressed once (the manifest,
// which needs the digests, goes last). Layers stored uncompressed (read
// from a daemon) are pushed gzip-compressed the same way.
func pushable(b *built.Built) (v1.Image, error) {
	layers := make([]v1.Layer, len(b.Layers))
	lazy := false
	gzipType := imgutil.MediaTypesOf(b.ManifestType()).LayerType()
	for j, l := range b.Layers {
		layers[j] = layer.Lazy(l)
		if mt, err := l.MediaType(); err == nil && layers[j] == l && gzipType != "" &&
			(mt == types.DockerUncompressedLayer || mt == types.OCIUncompressedLayer) {
			// A layer stored uncompressed (a daemon's) goes compressed.
			g, err := layer.LazyGzip(l, gzipType)
			if err != nil {
				return nil, err
			}
			layers[j] = g
		}
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
	if i.progress != nil {
		updates := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range updates {
				// go-containerregistry reports the whole push, not
				// each blob: the item is the image pushed.
				i.progress(imgutil.Progress{Phase: "push", Item: n, Complete: u.Complete, Total: u.Total})
			}
		}()
		defer func() { <-done }()
		opts = append(opts, remote.WithProgress(updates))
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
	b, err := i.BuildForSave()
	if err != nil {
		return "", err
	}
	tag, err := archive.Tag(i.Name())
	if err != nil {
		return "", err
	}
	return archive.WriteImageFile(b, []string{tag}, "imgutil-remote-*.tar", archive.Reporter(i.progress, "export"))
}
