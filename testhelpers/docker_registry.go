package testhelpers

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// DockerRegistry is an in-process registry (go-containerregistry's) on a
// loopback port, as the tests of buildpacks tools use it: without
// credentials it only serves reads; WithAuth makes it require random
// credentials (and take writes), WithImagePrivileges lets a test restrict
// single repositories.
type DockerRegistry struct {
	// Host and Port are where the registry listens.
	Host string
	Port string
	// Name is a random name for the registry.
	Name string
	// DockerDirectory is where WithAuth writes a docker config.json.
	DockerDirectory string

	username, password string
	server             *httptest.Server
	// shared is the registry handler given to WithSharedHandler, if any.
	shared http.Handler

	// mu guards privileges (nil unless WithImagePrivileges).
	mu         sync.Mutex
	privileges map[string]ImagePrivileges
}

// RegistryOption configures NewDockerRegistry.
type RegistryOption func(registry *DockerRegistry)

// ImageAccess is one kind of access to a repository.
type ImageAccess int

// The kinds of access NewImagePrivileges grants.
const (
	Readable ImageAccess = iota
	Writable
)

// ImagePrivileges is what may be done with one repository.
type ImagePrivileges struct {
	readable, writable bool
}

// NewImagePrivileges grants the given kinds of access (none: inaccessible).
func NewImagePrivileges(imageAccess ...ImageAccess) ImagePrivileges {
	var p ImagePrivileges
	for _, a := range imageAccess {
		switch a {
		case Readable:
			p.readable = true
		case Writable:
			p.writable = true
		}
	}
	return p
}

// WithSharedHandler serves through handler (another registry's content),
// so two registries with different rules can share one store.
func WithSharedHandler(handler http.Handler) RegistryOption {
	return func(r *DockerRegistry) { r.shared = handler }
}

// WithAuth makes the registry require random basic-auth credentials, and
// accept writes; Start writes them as a docker config.json in
// dockerConfigDir. Without it the registry is read-only.
func WithAuth(dockerConfigDir string) RegistryOption {
	return func(r *DockerRegistry) {
		r.username, r.password = RandString(10), RandString(10)
		r.DockerDirectory = dockerConfigDir
	}
}

// WithImagePrivileges lets SetReadOnly, SetWriteOnly, SetInaccessible and
// SetReadWrite restrict single repositories (with WithAuth): a repository
// so set is served by its privileges, with no credentials asked.
func WithImagePrivileges() RegistryOption {
	return func(r *DockerRegistry) { r.privileges = map[string]ImagePrivileges{} }
}

// NewDockerRegistry returns a registry to Start.
func NewDockerRegistry(ops ...RegistryOption) *DockerRegistry {
	r := &DockerRegistry{Name: "test-registry-" + RandString(10)}
	for _, op := range ops {
		op(r)
	}
	return r
}

// BasicAuth serves handler to requests with these credentials, and answers
// 401 with a Basic challenge for realm to the others.
func BasicAuth(handler http.Handler, username, password, realm string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != username || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
			http.Error(w, "Unauthorized.", http.StatusUnauthorized)
			return
		}
		handler.ServeHTTP(w, req)
	})
}

// ReadOnly serves handler to GET and HEAD requests and answers 405 to the
// others.
func ReadOnly(handler http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !isRead(req) {
			http.Error(w, "Method Not Allowed.", http.StatusMethodNotAllowed)
			return
		}
		handler.ServeHTTP(w, req)
	})
}

func isRead(req *http.Request) bool {
	return req.Method == http.MethodGet || req.Method == http.MethodHead
}

// repoInPath finds the repository of a blob, manifest or tags request.
var repoInPath = regexp.MustCompile(`^/v2/(.+)/(?:blobs|manifests|tags)(?:/|$)`)

// byPrivileges serves a repository with privileges by them, and every
// other request through authed.
func (r *DockerRegistry) byPrivileges(authed, open http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p ImagePrivileges
		ok := false
		if m := repoInPath.FindStringSubmatch(req.URL.Path); m != nil {
			r.mu.Lock()
			p, ok = r.privileges[m[1]]
			r.mu.Unlock()
		}
		switch {
		case !ok:
			authed.ServeHTTP(w, req)
		case isRead(req) && p.readable, !isRead(req) && p.writable:
			open.ServeHTTP(w, req)
		default:
			http.Error(w, "Unauthorized.", http.StatusUnauthorized)
		}
	})
}

// Start serves the registry on a free port of the host DockerHostname
// gives (127.0.0.1 for "localhost"), until Stop.
func (r *DockerRegistry) Start(t *testing.T) {
	t.Helper()
	r.Host = DockerHostname(t)
	store := r.shared
	if store == nil {
		store = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	}
	handler := ReadOnly(store)
	if r.username != "" {
		handler = BasicAuth(store, r.username, r.password, "registry")
		if r.privileges != nil {
			handler = r.byPrivileges(handler, store)
		}
	}
	ip := r.Host
	if ip == "localhost" {
		ip = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	AssertNil(t, err)
	r.server = &httptest.Server{Listener: l, Config: &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}}
	r.server.Start()
	r.Port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if r.username != "" && r.DockerDirectory != "" {
		cfg := map[string]any{"auths": map[string]any{r.Host + ":" + r.Port: map[string]string{"auth": r.EncodedAuth()}}}
		b, err := json.Marshal(cfg)
		AssertNil(t, err)
		AssertNil(t, os.WriteFile(filepath.Join(r.DockerDirectory, "config.json"), b, 0o600))
	}
}

// Stop ends the registry.
func (r *DockerRegistry) Stop(t *testing.T) {
	t.Helper()
	if r.server != nil {
		r.server.Close()
	}
}

// RepoName is name in this registry: host:port/name.
func (r *DockerRegistry) RepoName(name string) string { return r.Host + ":" + r.Port + "/" + name }

// EncodedAuth is the base64 of "username:password", as a docker
// config.json's "auth" holds it.
func (r *DockerRegistry) EncodedAuth() string {
	return base64.StdEncoding.EncodeToString([]byte(r.username + ":" + r.password))
}

// EncodedLabeledAuth is the base64 of the JSON {"username","password"}, as
// the Docker API's X-Registry-Auth takes it.
func (r *DockerRegistry) EncodedLabeledAuth() string {
	b, _ := json.Marshal(map[string]string{"username": r.username, "password": r.password})
	return base64.StdEncoding.EncodeToString(b)
}

func (r *DockerRegistry) setPrivileges(imageName string, p ImagePrivileges) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.privileges != nil {
		r.privileges[imageName] = p
	}
	return r.RepoName(imageName)
}

// SetReadOnly lets anyone read imageName and no one write it (with
// WithImagePrivileges); it returns RepoName(imageName).
func (r *DockerRegistry) SetReadOnly(imageName string) string {
	return r.setPrivileges(imageName, NewImagePrivileges(Readable))
}

// SetWriteOnly lets anyone write imageName and no one read it.
func (r *DockerRegistry) SetWriteOnly(imageName string) string {
	return r.setPrivileges(imageName, NewImagePrivileges(Writable))
}

// SetReadWrite lets anyone read and write imageName.
func (r *DockerRegistry) SetReadWrite(imageName string) string {
	return r.setPrivileges(imageName, NewImagePrivileges(Readable, Writable))
}

// SetInaccessible lets no one read or write imageName.
func (r *DockerRegistry) SetInaccessible(imageName string) string {
	return r.setPrivileges(imageName, NewImagePrivileges())
}
