package compat_test

// The familiar testhelpers surface of shared/CLIENTS.md, each name checked
// against its declared type: a signature that drifts fails to compile.

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockercli "github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	h "github.com/imgbridge/imgutil/testhelpers"
)

var _ = h.DockerRegistry{Host: "", Port: "", Name: "", DockerDirectory: ""}

var _ = h.ImagePrivileges{}

var _ h.RegistryOption = func(*h.DockerRegistry) {}

func init() {
	sig[h.ImageAccess](h.Readable)
	sig[h.ImageAccess](h.Writable)
	sig[func(*h.DockerRegistry) string]((*h.DockerRegistry).EncodedAuth)
	sig[func(*h.DockerRegistry) string]((*h.DockerRegistry).EncodedLabeledAuth)
	sig[func(*h.DockerRegistry, string) string]((*h.DockerRegistry).RepoName)
	sig[func(*h.DockerRegistry, string) string]((*h.DockerRegistry).SetInaccessible)
	sig[func(*h.DockerRegistry, string) string]((*h.DockerRegistry).SetReadOnly)
	sig[func(*h.DockerRegistry, string) string]((*h.DockerRegistry).SetReadWrite)
	sig[func(*h.DockerRegistry, string) string]((*h.DockerRegistry).SetWriteOnly)
	sig[func(*h.DockerRegistry, *testing.T)]((*h.DockerRegistry).Start)
	sig[func(*h.DockerRegistry, *testing.T)]((*h.DockerRegistry).Stop)
	sig[func(*testing.T, string, int)](h.AssertBlobsLen)
	sig[func(*testing.T, []string, ...string)](h.AssertContains)
	sig[func(*testing.T, v1.Image)](h.AssertDockerMediaTypes)
	sig[func(*testing.T, []string, ...string)](h.AssertDoesNotContain)
	sig[func(*testing.T, interface{}, interface{})](h.AssertEq)
	sig[func(*testing.T, v1.Descriptor, string, string)](h.AssertEqAnnotation)
	sig[func(*testing.T, error, string)](h.AssertError)
	sig[func(*testing.T, string, *regexp.Regexp)](h.AssertMatch)
	sig[func(*testing.T, interface{})](h.AssertNil)
	sig[func(*testing.T, interface{}, interface{})](h.AssertNotEq)
	sig[func(*testing.T, any)](h.AssertNotNil)
	sig[func(*testing.T, v1.Image)](h.AssertOCIMediaTypes)
	sig[func(*testing.T, string)](h.AssertPathDoesNotExists)
	sig[func(*testing.T, string)](h.AssertPathExists)
	sig[func(*testing.T, string, types.MediaType, int)](h.AssertRemoteImageIndex)
	sig[func(*testing.T, func() bool)](h.AssertTrue)
	sig[func(http.Handler, string, string, string) http.Handler](h.BasicAuth)
	sig[func(string, string, string) (string, error)](h.CreateSingleFileLayerTar)
	sig[func(string, string) (io.Reader, error)](h.CreateSingleFileTar)
	sig[func(string, string) io.ReadCloser](h.CreateSingleFileTarReader)
	sig[func(*testing.T, string, v1.Hash, string)](h.DeleteRegistryBlob)
	sig[func(*testing.T, v1.ImageIndex) []v1.Hash](h.DigestsFromImageIndex)
	sig[func(*testing.T) dockercli.APIClient](h.DockerCli)
	sig[func(*testing.T) string](h.DockerHostname)
	sig[func() bool](h.DockerIsPlatformAware)
	sig[func(dockercli.APIClient, ...string) error](h.DockerRmi)
	sig[func(*testing.T, func() bool, time.Duration, time.Duration)](h.Eventually)
	sig[func(*testing.T, string) v1.ImageIndex](h.FetchImageIndexDescriptor)
	sig[func(*testing.T, string) *v1.ConfigFile](h.FetchManifestImageConfigFile)
	sig[func(*testing.T, string) []string](h.FetchManifestLayers)
	sig[func(*testing.T, string) string](h.FileDiffID)
	sig[func(*testing.T, string) string](h.ImageID)
	sig[func(...h.RegistryOption) *h.DockerRegistry](h.NewDockerRegistry)
	sig[func(...h.ImageAccess) h.ImagePrivileges](h.NewImagePrivileges)
	sig[func(*testing.T, dockercli.APIClient, string)](h.PullIfMissing)
	sig[func(*testing.T, dockercli.APIClient, string, ocispec.Platform)](h.PullWithPlatformIfMissing)
	sig[func(*testing.T, dockercli.APIClient, string)](h.PushImage)
	sig[func(int) string](h.RandString)
	sig[func(*testing.T, string) (string, string, []byte)](h.RandomLayer)
	sig[func(*testing.T, *v1.Manifest, string) *v1.ConfigFile](h.ReadConfigFile)
	sig[func(*testing.T, string) v1.ImageIndex](h.ReadImageIndex)
	sig[func(*testing.T, string) *v1.IndexManifest](h.ReadIndexManifest)
	sig[func(*testing.T, v1.Hash, string) *v1.Manifest](h.ReadManifest)
	sig[func(*testing.T, string) (*v1.Manifest, *v1.ConfigFile)](h.ReadManifestAndConfigFile)
	sig[func(http.Handler) http.Handler](h.ReadOnly)
	sig[func(*testing.T, string, []remote.Option) v1.Image](h.RemoteImage)
	sig[func(*testing.T) v1.Image](h.RemoteRunnableBaseImage)
	sig[func(*testing.T, *exec.Cmd) string](h.Run)
	sig[func(*exec.Cmd) (string, int, error)](h.RunE)
	sig[func(string) string](h.RunnableBaseImage)
	sig[func([]string, int) string](h.StringElementAt)
	sig[func(string) h.RegistryOption](h.WithAuth)
	sig[func() h.RegistryOption](h.WithImagePrivileges)
	sig[func(http.Handler) h.RegistryOption](h.WithSharedHandler)
}
