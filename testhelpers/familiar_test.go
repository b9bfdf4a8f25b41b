package testhelpers_test

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	h "github.com/imgbridge/imgutil/testhelpers"
)

// push writes a random image to ref with the default keychain (the
// DOCKER_CONFIG the test set) and returns the error.
func push(t *testing.T, ref string) error {
	t.Helper()
	img, err := random.Image(64, 1)
	h.AssertNil(t, err)
	r, err := name.ParseReference(ref, name.WeakValidation)
	h.AssertNil(t, err)
	return remote.Write(r, img, remote.WithAuthFromKeychain(authn.DefaultKeychain))
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestDockerRegistryWithAuth(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	reg := h.NewDockerRegistry(h.WithAuth(dir))
	reg.Start(t)
	defer reg.Stop(t)
	if !strings.HasPrefix(reg.Name, "test-registry-") || reg.Port == "" || reg.DockerDirectory != dir {
		t.Fatalf("registry %+v", reg)
	}
	repo := reg.RepoName("app")
	if want := reg.Host + ":" + reg.Port + "/app"; repo != want {
		t.Fatalf("RepoName = %s, want %s", repo, want)
	}

	// The docker config holds the credentials, which the keychain uses.
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	h.AssertNil(t, err)
	var cfg struct {
		Auths map[string]struct{ Auth string }
	}
	h.AssertNil(t, json.Unmarshal(raw, &cfg))
	if cfg.Auths[reg.Host+":"+reg.Port].Auth != reg.EncodedAuth() {
		t.Fatalf("config.json = %s, want the auth %s", raw, reg.EncodedAuth())
	}
	userPass, err := base64.StdEncoding.DecodeString(reg.EncodedAuth())
	h.AssertNil(t, err)
	user, pass, _ := strings.Cut(string(userPass), ":")
	labeled, err := base64.StdEncoding.DecodeString(reg.EncodedLabeledAuth())
	h.AssertNil(t, err)
	var l map[string]string
	h.AssertNil(t, json.Unmarshal(labeled, &l))
	h.AssertEq(t, l, map[string]string{"username": user, "password": pass})
	if len(user) != 10 || len(pass) != 10 {
		t.Fatalf("credentials %q:%q are not random strings of 10", user, pass)
	}

	h.AssertNil(t, push(t, repo))
	h.AssertEq(t, len(h.FetchManifestLayers(t, repo)), 1)
	h.AssertNotNil(t, h.FetchManifestImageConfigFile(t, repo))

	// Without credentials: 401.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if err := push(t, reg.RepoName("other")); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("push without credentials = %v, want 401", err)
	}
}

func TestDockerRegistryWithoutAuthIsReadOnly(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	shared := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	dir := t.TempDir()
	writer := h.NewDockerRegistry(h.WithAuth(dir), h.WithSharedHandler(shared))
	writer.Start(t)
	defer writer.Stop(t)
	reader := h.NewDockerRegistry(h.WithSharedHandler(shared))
	reader.Start(t)
	defer reader.Stop(t)

	if err := push(t, reader.RepoName("app")); statusOf(err) != http.StatusMethodNotAllowed {
		t.Fatalf("push to a registry without auth = %v, want 405", err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	h.AssertNil(t, push(t, writer.RepoName("app")))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	// The read-only registry serves what the other wrote.
	h.AssertEq(t, len(h.FetchManifestLayers(t, reader.RepoName("app"))), 1)
}

func TestDockerRegistryImagePrivileges(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	reg := h.NewDockerRegistry(h.WithAuth(dir), h.WithImagePrivileges())
	reg.Start(t)
	defer reg.Stop(t)
	// Seed every repository with credentials first.
	for _, n := range []string{"ro", "wo", "none", "rw"} {
		h.AssertNil(t, push(t, reg.RepoName(n)))
	}
	ro, wo, none, rw := reg.SetReadOnly("ro"), reg.SetWriteOnly("wo"), reg.SetInaccessible("none"), reg.SetReadWrite("rw")
	h.AssertEq(t, ro, reg.RepoName("ro"))

	read := func(ref string) error {
		r, err := name.ParseReference(ref, name.WeakValidation)
		h.AssertNil(t, err)
		_, err = remote.Image(r, remote.WithAuthFromKeychain(authn.DefaultKeychain))
		return err
	}
	for _, tc := range []struct {
		ref             string
		canRead, canPut bool
	}{{ro, true, false}, {wo, false, true}, {none, false, false}, {rw, true, true}} {
		if err := read(tc.ref); (err == nil) != tc.canRead {
			t.Errorf("reading %s = %v, want readable %v", tc.ref, err, tc.canRead)
		}
		// A write without credentials: starting a blob upload.
		repo := strings.TrimPrefix(tc.ref, reg.Host+":"+reg.Port+"/")
		res, err := http.Post("http://"+reg.Host+":"+reg.Port+"/v2/"+repo+"/blobs/uploads/", "", nil)
		h.AssertNil(t, err)
		res.Body.Close()
		if (res.StatusCode == http.StatusAccepted) != tc.canPut {
			t.Errorf("starting an upload to %s: %s, want writable %v", tc.ref, res.Status, tc.canPut)
		}
	}
}

func TestBasicAuthAndReadOnlyHandlers(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		handler http.Handler
		req     *http.Request
		want    int
	}{
		{h.BasicAuth(ok, "u", "p", "r"), withAuth(http.MethodGet, "u", "p"), http.StatusTeapot},
		{h.BasicAuth(ok, "u", "p", "r"), withAuth(http.MethodGet, "u", "bad"), http.StatusUnauthorized},
		{h.ReadOnly(ok), withAuth(http.MethodHead, "", ""), http.StatusTeapot},
		{h.ReadOnly(ok), withAuth(http.MethodPut, "", ""), http.StatusMethodNotAllowed},
	} {
		rec := &recorder{header: http.Header{}}
		tc.handler.ServeHTTP(rec, tc.req)
		if rec.code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.req.Method, rec.code, tc.want)
		}
	}
}

func withAuth(method, user, pass string) *http.Request {
	r, _ := http.NewRequest(method, "http://x/v2/", nil)
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	return r
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

func TestTarAndFileHelpers(t *testing.T) {
	p, err := h.CreateSingleFileLayerTar("/cnb/file.txt", "hello", "linux")
	h.AssertNil(t, err)
	defer os.Remove(p)
	h.AssertEq(t, tarNames(t, p), []string{"/cnb/file.txt"})
	w, err := h.CreateSingleFileLayerTar("/cnb/file.txt", "hello", "windows")
	h.AssertNil(t, err)
	defer os.Remove(w)
	h.AssertEq(t, tarNames(t, w), []string{"Files", "Hives", "Files/cnb", "Files/cnb/file.txt"})

	r, err := h.CreateSingleFileTar("/a.txt", "a")
	h.AssertNil(t, err)
	b, err := io.ReadAll(tar.NewReader(r))
	h.AssertEq(t, string(b), "")
	h.AssertNil(t, err)
	rc := h.CreateSingleFileTarReader("/b.txt", "b")
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	h.AssertNil(t, err)
	content, _ := io.ReadAll(tr)
	h.AssertEq(t, hdr.Name+"="+string(content), "/b.txt=b")
	h.AssertNil(t, rc.Close())

	dir := t.TempDir()
	path, sha, contents := h.RandomLayer(t, dir)
	h.AssertEq(t, sha, h.FileDiffID(t, path))
	h.AssertMatch(t, string(contents), regexp.MustCompile(`^some-content-`))
	h.AssertPathExists(t, path)
	h.AssertPathDoesNotExists(t, filepath.Join(dir, "nope"))

	out := h.Run(t, exec.Command("sh", "-c", "echo hi"))
	h.AssertEq(t, out, "hi\n")
	_, code, err := h.RunE(exec.Command("sh", "-c", "exit 3"))
	h.AssertError(t, err, "exit status 3")
	h.AssertEq(t, code, 3)

	h.AssertEq(t, len(h.RandString(7)), 7)
	h.AssertEq(t, h.StringElementAt([]string{"a", "b", "c"}, -1), "c")
	h.AssertEq(t, h.StringElementAt([]string{"a", "b", "c"}, 1), "b")
	h.AssertContains(t, []string{"a", "b"}, "a", "b")
	h.AssertDoesNotContain(t, []string{"a", "b"}, "c")
	h.AssertNotEq(t, 1, 2)
	h.AssertTrue(t, func() bool { return true })
	h.AssertNil(t, nil)
	h.AssertNil(t, (*int)(nil))
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	h.AssertNil(t, err)
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		h.AssertNil(t, err)
		names = append(names, hdr.Name)
	}
}

func TestLayoutReaders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	img, err := layout.NewImage(dir, layout.WithMediaTypes(imgutil.OCITypes))
	h.AssertNil(t, err)
	p, _, _ := h.RandomLayer(t, t.TempDir())
	h.AssertNil(t, img.AddLayer(p))
	h.AssertNil(t, img.AnnotateRefName("my-ref"))
	h.AssertNil(t, img.Save())

	idx := h.ReadIndexManifest(t, dir)
	h.AssertEq(t, len(idx.Manifests), 1)
	h.AssertEqAnnotation(t, idx.Manifests[0], "org.opencontainers.image.ref.name", "my-ref")
	m, cfg := h.ReadManifestAndConfigFile(t, dir)
	h.AssertEq(t, cfg.RootFS.DiffIDs[0].String(), h.FileDiffID(t, p))
	h.AssertEq(t, h.ReadManifest(t, idx.Manifests[0].Digest, dir).Config.Digest, m.Config.Digest)
	h.AssertEq(t, h.ReadConfigFile(t, m, dir).OS, cfg.OS)
	h.AssertBlobsLen(t, dir, 3)
	digests := h.DigestsFromImageIndex(t, h.ReadImageIndex(t, dir))
	h.AssertEq(t, digests, []v1.Hash{idx.Manifests[0].Digest})
	saved, err := h.ReadImageIndex(t, dir).Image(digests[0])
	h.AssertNil(t, err)
	h.AssertOCIMediaTypes(t, saved)
}
