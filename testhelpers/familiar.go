package testhelpers

// The helpers buildpacks tools' tests already call (the familiar surface of
// the existing library's testhelpers), working offline.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockercli "github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/jsonstream"
	ilayer "github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/layer"
)

// RandString returns n random lower-case letters.
func RandString(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(letters))))
		if err != nil {
			panic(err)
		}
		b[i] = letters[k.Int64()]
	}
	return string(b)
}

// singleFileTar is a tar holding one file at path with content txt.
func singleFileTar(path, txt string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(txt))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write([]byte(txt)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CreateSingleFileTar returns a tar holding one file at path with txt.
func CreateSingleFileTar(path, txt string) (io.Reader, error) {
	b, err := singleFileTar(path, txt)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// CreateSingleFileTarReader is CreateSingleFileTar as a ReadCloser; an
// error shows when it is read.
func CreateSingleFileTarReader(path, txt string) io.ReadCloser {
	b, err := singleFileTar(path, txt)
	if err != nil {
		pr, pw := io.Pipe()
		pw.CloseWithError(err)
		return pr
	}
	return io.NopCloser(bytes.NewReader(b))
}

// CreateSingleFileLayerTar writes, in a new temp file whose path it
// returns, a layer holding one file at layerPath with txt; for osType
// "windows", laid out as a Windows layer (layerPath must be absolute).
func CreateSingleFileLayerTar(layerPath, txt, osType string) (string, error) {
	f, err := os.CreateTemp("", "single-file-layer-*.tar")
	if err != nil {
		return "", err
	}
	defer f.Close()
	type tarWriter interface {
		WriteHeader(*tar.Header) error
		Write([]byte) (int, error)
		Close() error
	}
	var tw tarWriter = tar.NewWriter(f)
	if osType == "windows" {
		tw = layer.NewWindowsWriter(f)
	}
	if err := tw.WriteHeader(&tar.Header{Name: layerPath, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(txt))}); err != nil {
		return "", err
	}
	if _, err := tw.Write([]byte(txt)); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// FileDiffID is "sha256:" and the hex sha256 of the file at path.
func FileDiffID(t *testing.T, path string) string {
	t.Helper()
	d, err := ilayer.FileSHA256(path)
	AssertNil(t, err)
	return d.String()
}

// RandomLayer writes into tmpDir a layer holding one file of random
// content, and returns its path, its diffID and the file's content.
func RandomLayer(t *testing.T, tmpDir string) (path string, sha string, contents []byte) {
	t.Helper()
	id := RandString(12)
	contents = []byte("some-content-" + id)
	b, err := singleFileTar("/new-layer-"+id+".txt", string(contents))
	AssertNil(t, err)
	path = filepath.Join(tmpDir, "layer-"+id+".tar")
	AssertNil(t, os.WriteFile(path, b, 0o644))
	return path, FileDiffID(t, path), contents
}

// Run runs cmd and returns its combined output, failing the test if it
// fails.
func Run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, code, err := RunE(cmd)
	if err != nil {
		t.Fatalf("running %v: exit %d: %v\n%s", cmd.Args, code, err, out)
	}
	return out
}

// RunE runs cmd and returns its combined output and exit code.
func RunE(cmd *exec.Cmd) (output string, exitCode int, err error) {
	out, err := cmd.CombinedOutput()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		code = -1
	}
	return string(out), code, err
}

// DockerCli returns a client of the daemon DOCKER_HOST (or the default
// socket) names, negotiating the API version; the test is skipped (failed
// with IMGUTIL_REQUIRE_DAEMON) when none answers.
func DockerCli(t *testing.T) dockercli.APIClient {
	t.Helper()
	return DockerClient(t)
}

// DockerHostname is the host a registry serves the daemon on: a
// non-loopback address of this machine inside one of the daemon's
// insecure-registry ranges, else "localhost" (also when no daemon answers).
func DockerHostname(t *testing.T) string {
	t.Helper()
	cli, err := dockercli.New(dockercli.FromEnv)
	if err != nil {
		return "localhost"
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := cli.Info(ctx, dockercli.InfoOptions{})
	if err != nil || info.Info.RegistryConfig == nil {
		return "localhost"
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "localhost"
	}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() {
			continue
		}
		for _, prefix := range info.Info.RegistryConfig.InsecureRegistryCIDRs {
			if ip, ok := netip.AddrFromSlice(ipnet.IP); ok && prefix.Contains(ip.Unmap()) {
				return ipnet.IP.String()
			}
		}
	}
	return "localhost"
}

// DockerIsPlatformAware reports whether the daemon takes a platform for
// image inspection and saves (API 1.49 and later).
func DockerIsPlatformAware() bool {
	cli, err := dockercli.New(dockercli.FromEnv)
	if err != nil {
		return false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(ctx, dockercli.ServerVersionOptions{})
	if err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(v.APIVersion, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 1 || (major == 1 && minor >= 49)
}

// DockerRmi removes the images repoNames from the daemon, with force.
func DockerRmi(dockerCli dockercli.APIClient, repoNames ...string) error {
	var errs []error
	for _, n := range repoNames {
		_, err := dockerCli.ImageRemove(context.Background(), n, dockercli.ImageRemoveOptions{Force: true, PruneChildren: true})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ImageID is the ID the daemon gives the image repoName.
func ImageID(t *testing.T, repoName string) string {
	t.Helper()
	res, err := DockerCli(t).ImageInspect(context.Background(), repoName)
	AssertNil(t, err)
	return res.ID
}

// runnableBase is the name RunnableBaseImage gives a linux base: no
// registry serves it; PullIfMissing loads an offline busybox image under it.
const runnableBase = "imgutil-testhelpers/runnable-base:linux"

// RunnableBaseImage is the name of a small runnable base image for os. For
// linux it is an offline stand-in (busybox-static) that PullIfMissing puts
// in the daemon; windows tests need a Windows daemon and its nanoserver.
func RunnableBaseImage(os string) string {
	if os == "windows" {
		return "mcr.microsoft.com/windows/nanoserver:1809"
	}
	return runnableBase
}

// RemoteRunnableBaseImage is a runnable linux base image built offline.
func RemoteRunnableBaseImage(t *testing.T) v1.Image {
	t.Helper()
	return BusyboxImage(t, imgutil.DockerTypes)
}

// PullIfMissing makes sure the daemon has ref: the offline stand-in of
// RunnableBaseImage is loaded, anything else pulled.
func PullIfMissing(t *testing.T, docker dockercli.APIClient, ref string) {
	t.Helper()
	pullIfMissing(t, docker, ref, nil)
}

// PullWithPlatformIfMissing is PullIfMissing for one platform.
func PullWithPlatformIfMissing(t *testing.T, docker dockercli.APIClient, ref string, platform ocispec.Platform) {
	t.Helper()
	pullIfMissing(t, docker, ref, &platform)
}

func pullIfMissing(t *testing.T, docker dockercli.APIClient, ref string, platform *ocispec.Platform) {
	t.Helper()
	var opts []dockercli.ImageInspectOption
	if platform != nil && DockerIsPlatformAware() {
		opts = append(opts, dockercli.ImageInspectWithPlatform(platform))
	}
	if _, err := docker.ImageInspect(context.Background(), ref, opts...); err == nil {
		return
	}
	if ref == runnableBase {
		DockerPut(t, docker, ref, BusyboxImage(t, imgutil.DockerTypes))
		return
	}
	var pull dockercli.ImagePullOptions
	if platform != nil {
		pull.Platforms = []ocispec.Platform{*platform}
	}
	res, err := docker.ImagePull(context.Background(), ref, pull)
	AssertNil(t, err)
	defer res.Close()
	if _, err := jsonstream.Read(res); err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
}

// PushImage pushes the daemon image refStr to its registry, with the
// credentials of the default keychain (DOCKER_CONFIG).
func PushImage(t *testing.T, docker dockercli.APIClient, refStr string) {
	t.Helper()
	ref, err := name.ParseReference(refStr, name.WeakValidation)
	AssertNil(t, err)
	img := DockerRead(t, docker, refStr)
	AssertNil(t, remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)))
}

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

// ReadImageIndex opens the index of the OCI layout at path.
func ReadImageIndex(t *testing.T, path string) v1.ImageIndex {
	t.Helper()
	idx, err := ggcrlayout.ImageIndexFromPath(path)
	AssertNil(t, err)
	return idx
}

// ReadIndexManifest reads index.json of the OCI layout at path.
func ReadIndexManifest(t *testing.T, path string) *v1.IndexManifest {
	t.Helper()
	m, err := ReadImageIndex(t, path).IndexManifest()
	AssertNil(t, err)
	return m
}

func readBlob(t *testing.T, path string, digest v1.Hash) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(path, "blobs", digest.Algorithm, digest.Hex))
	AssertNil(t, err)
	return b
}

// ReadManifest reads the manifest blob digest of the OCI layout at path.
func ReadManifest(t *testing.T, digest v1.Hash, path string) *v1.Manifest {
	t.Helper()
	m, err := v1.ParseManifest(bytes.NewReader(readBlob(t, path, digest)))
	AssertNil(t, err)
	return m
}

// ReadConfigFile reads the config of manifest from the OCI layout at path.
func ReadConfigFile(t *testing.T, manifest *v1.Manifest, path string) *v1.ConfigFile {
	t.Helper()
	cfg, err := v1.ParseConfigFile(bytes.NewReader(readBlob(t, path, manifest.Config.Digest)))
	AssertNil(t, err)
	return cfg
}

// ReadManifestAndConfigFile reads the first manifest of the OCI layout at
// path and its config.
func ReadManifestAndConfigFile(t *testing.T, path string) (*v1.Manifest, *v1.ConfigFile) {
	t.Helper()
	idx := ReadIndexManifest(t, path)
	if len(idx.Manifests) == 0 {
		t.Fatalf("layout %s holds no manifest", path)
	}
	m := ReadManifest(t, idx.Manifests[0].Digest, path)
	return m, ReadConfigFile(t, m, path)
}
