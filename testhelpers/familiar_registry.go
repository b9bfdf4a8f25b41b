package testhelpers

// The helpers buildpacks tools' tests already call (the familiar surface of
// the existing library's testhelpers), working offline: registries.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RemoteImage reads the registry image testImageName with opts.
func RemoteImage(t *testing.T, testImageName string, opts []remote.Option) v1.Image {
	t.Helper()
	ref, err := name.ParseReference(testImageName, name.WeakValidation)
	AssertNil(t, err)
	img, err := remote.Image(ref, opts...)
	AssertNil(t, err)
	return img
}

func keychainOptions() []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// FetchImageIndexDescriptor reads the registry index repoName (default
// keychain).
func FetchImageIndexDescriptor(t *testing.T, repoName string) v1.ImageIndex {
	t.Helper()
	ref, err := name.ParseReference(repoName, name.WeakValidation)
	AssertNil(t, err)
	idx, err := remote.Index(ref, keychainOptions()...)
	AssertNil(t, err)
	return idx
}

// FetchManifestImageConfigFile reads the config of the registry image
// repoName (default keychain).
func FetchManifestImageConfigFile(t *testing.T, repoName string) *v1.ConfigFile {
	t.Helper()
	cfg, err := RemoteImage(t, repoName, keychainOptions()).ConfigFile()
	AssertNil(t, err)
	return cfg
}

// FetchManifestLayers returns the layer digests of the registry image
// repoName's manifest (default keychain).
func FetchManifestLayers(t *testing.T, repoName string) []string {
	t.Helper()
	m, err := RemoteImage(t, repoName, keychainOptions()).Manifest()
	AssertNil(t, err)
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// AssertRemoteImageIndex fails the test unless the registry index repoName
// has mediaType and expectedNumberOfManifests manifests.
func AssertRemoteImageIndex(t *testing.T, repoName string, mediaType types.MediaType, expectedNumberOfManifests int) {
	t.Helper()
	m, err := FetchImageIndexDescriptor(t, repoName).IndexManifest()
	AssertNil(t, err)
	if m.MediaType != mediaType || len(m.Manifests) != expectedNumberOfManifests {
		t.Fatalf("index %s is %s with %d manifests, want %s with %d", repoName, m.MediaType, len(m.Manifests), mediaType, expectedNumberOfManifests)
	}
}

// DigestsFromImageIndex returns the digests of the index's manifests.
func DigestsFromImageIndex(t *testing.T, index v1.ImageIndex) []v1.Hash {
	t.Helper()
	m, err := index.IndexManifest()
	AssertNil(t, err)
	var out []v1.Hash
	for _, d := range m.Manifests {
		out = append(out, d.Digest)
	}
	return out
}

// DeleteRegistryBlob deletes the blob digest of repoName
// (registry/repository) from its registry, authenticating with
// encodedAuth (EncodedAuth) when it is not empty.
func DeleteRegistryBlob(t *testing.T, repoName string, digest v1.Hash, encodedAuth string) {
	t.Helper()
	ref, err := name.ParseReference(repoName, name.WeakValidation)
	AssertNil(t, err)
	repo := ref.Context()
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
	req, err := http.NewRequest(http.MethodDelete, u, nil)
	AssertNil(t, err)
	if encodedAuth != "" {
		req.Header.Set("Authorization", "Basic "+encodedAuth)
	}
	res, err := http.DefaultClient.Do(req)
	AssertNil(t, err)
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("deleting blob %s of %s: %s: %s", digest, repoName, res.Status, strings.TrimSpace(string(body)))
	}
}
