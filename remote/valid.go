package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imgbridge/imgutil"
)

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
