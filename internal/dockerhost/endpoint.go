package dockerhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrNoContext is the error of a Docker context that does not exist.
var ErrNoContext = errors.New("no such Docker context")

// Endpoint is a Docker daemon and how to reach it.
type Endpoint struct {
	// Host is the daemon's address: unix://PATH, npipe://PATH,
	// tcp://HOST:PORT or ssh://[USER@]HOST[:PORT].
	Host string
	// Context is the Docker context it came from ("default": the
	// environment).
	Context string
	// TLS, when not nil, secures a tcp:// host.
	TLS *TLS
}

// TLS is the TLS material of an endpoint: files in PEM, each optional.
type TLS struct {
	CA, Cert, Key string
	// SkipVerify trusts any server certificate (DOCKER_TLS without
	// DOCKER_TLS_VERIFY; a context's SkipTLSVerify).
	SkipVerify bool
}

// DefaultHost is where the daemon listens when nothing says otherwise.
func DefaultHost() string {
	if runtime.GOOS == "windows" {
		return "npipe:////./pipe/docker_engine"
	}
	return "unix:///var/run/docker.sock"
}

// defaultTLSHost is where the Docker CLI looks for a daemon when TLS is
// asked for and no host is named.
const defaultTLSHost = "tcp://localhost:2376"

// withDefaultPort gives a tcp:// host without a port the Docker CLI's
// default, 2375, and one without a host name localhost.
func withDefaultPort(host string) string {
	addr, ok := strings.CutPrefix(host, "tcp://")
	if !ok || addr == "" {
		return host
	}
	hostPort, path, _ := strings.Cut(addr, "/")
	h, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		h, port = strings.Trim(hostPort, "[]"), ""
	}
	if h == "" {
		h = "localhost"
	}
	if port == "" {
		port = "2375"
	}
	out := "tcp://" + net.JoinHostPort(h, port)
	if path != "" {
		out += "/" + path
	}
	return out
}

// FromEnv is the endpoint the Docker CLI would use in this environment: a
// DOCKER_HOST wins (with DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH),
// then DOCKER_CONTEXT, then the current context of the CLI's configuration
// (DOCKER_CONFIG, default ~/.docker), then the default socket.
func FromEnv() (Endpoint, error) {
	return fromEnv(os.Getenv)
}

func fromEnv(getenv func(string) string) (Endpoint, error) {
	name := "default"
	if getenv("DOCKER_HOST") == "" {
		if c := getenv("DOCKER_CONTEXT"); c != "" {
			name = c
		} else if c, err := currentContext(configDir(getenv)); err != nil {
			return Endpoint{}, err
		} else if c != "" {
			name = c
		}
	}
	if name != "default" {
		return fromContext(configDir(getenv), name)
	}
	ep := Endpoint{Host: getenv("DOCKER_HOST"), Context: "default"}
	verify := getenv("DOCKER_TLS_VERIFY") != ""
	useTLS := verify || getenv("DOCKER_TLS") != ""
	switch {
	case ep.Host == "" && useTLS:
		ep.Host = defaultTLSHost // as the Docker CLI: TLS means TCP
	case ep.Host == "":
		ep.Host = DefaultHost()
	}
	ep.Host = withDefaultPort(ep.Host)
	if useTLS {
		dir := getenv("DOCKER_CERT_PATH")
		if dir == "" {
			dir = configDir(getenv)
		}
		t := &TLS{SkipVerify: !verify}
		if verify {
			t.CA = filepath.Join(dir, "ca.pem")
		}
		// As the CLI: a client certificate where one is.
		if exists(filepath.Join(dir, "cert.pem")) && exists(filepath.Join(dir, "key.pem")) {
			t.Cert, t.Key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		}
		ep.TLS = t
	}
	return ep, ep.check()
}

// FromContext is the endpoint of the Docker context name, as kept in the
// Docker CLI's configuration directory (DOCKER_CONFIG, default ~/.docker).
func FromContext(name string) (Endpoint, error) {
	if name == "default" {
		return fromEnv(func(k string) string {
			if k == "DOCKER_CONTEXT" {
				return ""
			}
			return os.Getenv(k)
		})
	}
	return fromContext(configDir(os.Getenv), name)
}

// configDir is the Docker CLI's configuration directory.
func configDir(getenv func(string) string) string {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

func currentContext(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the Docker CLI's configuration: %w", err)
	}
	var cfg struct {
		CurrentContext string `json:"currentContext"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("reading %s: %w", filepath.Join(dir, "config.json"), err)
	}
	return cfg.CurrentContext, nil
}

// contextID is the directory a context's files are kept under.
func contextID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func fromContext(dir, name string) (Endpoint, error) {
	id := contextID(name)
	meta := filepath.Join(dir, "contexts", "meta", id, "meta.json")
	b, err := os.ReadFile(meta)
	if errors.Is(err, fs.ErrNotExist) {
		return Endpoint{}, fmt.Errorf("docker context %q (%s): %w", name, meta, ErrNoContext)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("reading Docker context %q: %w", name, err)
	}
	var m struct {
		Endpoints map[string]struct {
			Host          string
			SkipTLSVerify bool
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Endpoint{}, fmt.Errorf("reading Docker context %q (%s): %w", name, meta, err)
	}
	d, ok := m.Endpoints["docker"]
	if !ok || d.Host == "" {
		return Endpoint{}, fmt.Errorf("docker context %q has no docker endpoint (%s)", name, meta)
	}
	ep := Endpoint{Host: withDefaultPort(d.Host), Context: name}
	tlsDir := filepath.Join(dir, "contexts", "tls", id, "docker")
	t := &TLS{SkipVerify: d.SkipTLSVerify}
	for file, field := range map[string]*string{"ca.pem": &t.CA, "cert.pem": &t.Cert, "key.pem": &t.Key} {
		if p := filepath.Join(tlsDir, file); exists(p) {
			*field = p
		}
	}
	if t.CA != "" || t.Cert != "" || t.SkipVerify {
		ep.TLS = t
	}
	return ep, ep.check()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// check refuses a host no transport serves.
func (e Endpoint) check() error {
	scheme, rest, ok := strings.Cut(e.Host, "://")
	if !ok || rest == "" {
		return fmt.Errorf("docker host %q: want unix://, npipe://, tcp:// or ssh:// and an address", e.Host)
	}
	switch scheme {
	case "unix", "npipe", "tcp", "http", "https":
		return nil
	case "ssh":
		_, err := parseSSH(e.Host)
		return err
	}
	return fmt.Errorf("docker host %q: unknown scheme %q (want unix, npipe, tcp or ssh)", e.Host, scheme)
}

// Env is the environment a child process needs to reach the same daemon
// (to put after the parent's own: the later value wins).
func (e Endpoint) Env() []string {
	if e.Context != "" && e.Context != "default" {
		return []string{"DOCKER_HOST=", "DOCKER_CONTEXT=" + e.Context}
	}
	env := []string{"DOCKER_HOST=" + e.Host, "DOCKER_CONTEXT=", "DOCKER_TLS_VERIFY=", "DOCKER_TLS=", "DOCKER_CERT_PATH="}
	if t := e.TLS; t != nil {
		if t.SkipVerify {
			env = append(env, "DOCKER_TLS=1")
		} else {
			env = append(env, "DOCKER_TLS_VERIFY=1")
		}
		for _, p := range []string{t.CA, t.Cert, t.Key} {
			if p != "" {
				env = append(env, "DOCKER_CERT_PATH="+filepath.Dir(p))
				break
			}
		}
	}
	return env
}
