package testhelpers

// The helpers buildpacks tools' tests already call (the familiar surface of
// the existing library's testhelpers), working offline: the Docker daemon and commands.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dockercli "github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/jsonstream"
)

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
	return versions.GreaterThanOrEqualTo(v.APIVersion, "1.49")
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
