package remote

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
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
	// sums are the compressed digests of layers stored uncompressed (a
	// daemon's) learnt while pushing them.
	sums *layer.Sums

	// mu guards repoName and pushed.
	mu       sync.Mutex
	repoName string
	// pushed is what the last save wrote: its manifest digest as the
	// registry holds it (layers stored uncompressed, a daemon's, go
	// compressed, so it is not the digest of the image as edited), for
	// the config it had.
	pushed struct{ config, digest v1.Hash }
}

var (
	_ imgutil.ContextImage = (*Image)(nil)
	_ v1.Image             = (*Image)(nil)
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
	if err := o.RefuseOtherBackends("remote"); err != nil {
		return nil, err
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
	return &Image{CNBImageCore: core, access: a, platform: o.Platform, addEmptyLayerOnSave: o.AddEmptyLayerOnSave, progress: o.Progress, repoName: repoName, sums: layer.SumsFromEnv()}, nil
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
	if cfg, err := i.ConfigName(); err == nil {
		i.mu.Lock()
		if i.pushed.config == cfg && i.pushed.digest != (v1.Hash{}) {
			d = i.pushed.digest // saved and not edited since: what the registry holds
		}
		i.mu.Unlock()
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
