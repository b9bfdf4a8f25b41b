package testhelpers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// Registry is a real registry (Debian's docker-registry, distribution 2.8)
// on a loopback port, with its storage in a temp dir, stopped with the test.
type Registry struct {
	// Host is host:port.
	Host string
	// Username and Password are set when the registry requires them.
	Username, Password string
}

// StartRegistryOption configures StartRegistry.
type StartRegistryOption func(*registryOptions)

type registryOptions struct{ user, password string }

// WithBasicAuth makes the registry require these credentials (htpasswd).
// Default: no authentication.
func WithBasicAuth(user, password string) StartRegistryOption {
	return func(o *registryOptions) { o.user, o.password = user, password }
}

// StartRegistry starts a registry for the test, or skips the test when
// docker-registry is not installed (fails with IMGUTIL_REQUIRE_DAEMON set).
func StartRegistry(t testing.TB, opts ...StartRegistryOption) *Registry {
	t.Helper()
	var o registryOptions
	for _, op := range opts {
		op(&o)
	}
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv(RequireDaemonEnv) != "" {
			t.Fatalf("docker-registry is not installed and %s is set", RequireDaemonEnv)
		}
		t.Skip("skipped: docker-registry is not installed (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
`, filepath.Join(dir, "data"), port)
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.MinCost)
		mustDo(t, err)
		htpasswd := filepath.Join(dir, "htpasswd")
		mustDo(t, os.WriteFile(htpasswd, []byte(o.user+":"+string(hash)+"\n"), 0o600))
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: imgutil-test\n    path: %s\n", htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	mustDo(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	mustDo(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	mustDo(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logFile.Close()
	})
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), Username: o.user, Password: o.password}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("registry on %s did not answer: %v\n%s", r.Host, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustDo(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	mustDo(t, l.Close())
	return port
}

// Repo returns the reference host/repository:tag in this registry.
func (r *Registry) Repo(repoAndTag string) string { return r.Host + "/" + repoAndTag }

// Keychain returns a keychain that holds this registry's credentials
// (anonymous when it has none).
func (r *Registry) Keychain() authn.Keychain {
	return staticKeychain{host: r.Host, auth: &authn.Basic{Username: r.Username, Password: r.Password}, none: r.Username == ""}
}

type staticKeychain struct {
	host string
	auth authn.Authenticator
	none bool
}

func (k staticKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.none || res.RegistryStr() != k.host {
		return authn.Anonymous, nil
	}
	return k.auth, nil
}

// Put pushes img to this registry as repoAndTag (no library code involved)
// and returns the full reference.
func (r *Registry) Put(t testing.TB, repoAndTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.Repo(repoAndTag))
	mustDo(t, err)
	mustDo(t, remote.Write(ref, img, remote.WithAuthFromKeychain(r.Keychain())))
	return ref.String()
}

// Get pulls repoAndTag from this registry.
func (r *Registry) Get(t testing.TB, repoAndTag string) v1.Image {
	t.Helper()
	ref, err := name.ParseReference(r.Repo(repoAndTag))
	mustDo(t, err)
	img, err := remote.Image(ref, remote.WithAuthFromKeychain(r.Keychain()))
	mustDo(t, err)
	return img
}
