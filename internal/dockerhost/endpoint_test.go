package dockerhost

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeContext keeps a Docker context under dir as the Docker CLI does.
func writeContext(t *testing.T, dir, name, host string, skipVerify bool, tlsFiles ...string) {
	t.Helper()
	meta := map[string]any{
		"Name":      name,
		"Metadata":  map[string]any{},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": skipVerify}},
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(dir, "contexts", "meta", contextID(name))
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mdir, "meta.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(dir, "contexts", "tls", contextID(name), "docker")
	for _, f := range tlsFiles {
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tdir, f), []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	cfg := t.TempDir()
	writeContext(t, cfg, "remote", "tcp://10.0.0.1:2376", false, "ca.pem", "cert.pem", "key.pem")
	writeContext(t, cfg, "insecure", "tcp://10.0.0.2:2376", true)
	writeContext(t, cfg, "plain", "tcp://10.0.0.3:2375", false)
	writeContext(t, cfg, "over-ssh", "ssh://me@build-host:2222", false)
	certs := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(certs, f), []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctxTLS := filepath.Join(cfg, "contexts", "tls", contextID("remote"), "docker")
	for _, c := range []struct {
		name    string
		env     map[string]string
		current string
		want    Endpoint
	}{
		{"nothing set", nil, "", Endpoint{Host: DefaultHost(), Context: "default"}},
		{"DOCKER_HOST", map[string]string{"DOCKER_HOST": "tcp://h:2375"}, "", Endpoint{Host: "tcp://h:2375", Context: "default"}},
		{"DOCKER_HOST beats DOCKER_CONTEXT", map[string]string{"DOCKER_HOST": "unix:///x.sock", "DOCKER_CONTEXT": "remote"}, "remote",
			Endpoint{Host: "unix:///x.sock", Context: "default"}},
		{"TLS verified", map[string]string{"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": certs}, "",
			Endpoint{Host: "tcp://h:2376", Context: "default", TLS: &TLS{CA: filepath.Join(certs, "ca.pem"), Cert: filepath.Join(certs, "cert.pem"), Key: filepath.Join(certs, "key.pem")}}},
		{"TLS unverified", map[string]string{"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS": "1", "DOCKER_CERT_PATH": certs}, "",
			Endpoint{Host: "tcp://h:2376", Context: "default", TLS: &TLS{SkipVerify: true, Cert: filepath.Join(certs, "cert.pem"), Key: filepath.Join(certs, "key.pem")}}},
		{"cert path alone is no TLS (as the CLI)", map[string]string{"DOCKER_HOST": "tcp://h:2375", "DOCKER_CERT_PATH": certs}, "",
			Endpoint{Host: "tcp://h:2375", Context: "default"}},
		{"DOCKER_CONTEXT", map[string]string{"DOCKER_CONTEXT": "remote"}, "plain",
			Endpoint{Host: "tcp://10.0.0.1:2376", Context: "remote", TLS: &TLS{CA: filepath.Join(ctxTLS, "ca.pem"), Cert: filepath.Join(ctxTLS, "cert.pem"), Key: filepath.Join(ctxTLS, "key.pem")}}},
		{"current context", nil, "insecure", Endpoint{Host: "tcp://10.0.0.2:2376", Context: "insecure", TLS: &TLS{SkipVerify: true}}},
		{"context without TLS", nil, "plain", Endpoint{Host: "tcp://10.0.0.3:2375", Context: "plain"}},
		{"ssh context", nil, "over-ssh", Endpoint{Host: "ssh://me@build-host:2222", Context: "over-ssh"}},
		{"DOCKER_CONTEXT=default", map[string]string{"DOCKER_CONTEXT": "default"}, "plain", Endpoint{Host: DefaultHost(), Context: "default"}},
		{"named pipe", map[string]string{"DOCKER_HOST": "npipe:////./pipe/docker_engine"}, "", Endpoint{Host: "npipe:////./pipe/docker_engine", Context: "default"}},
		{"TLS and no host: the CLI's TLS default", map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": certs}, "",
			Endpoint{Host: "tcp://localhost:2376", Context: "default", TLS: &TLS{CA: filepath.Join(certs, "ca.pem"), Cert: filepath.Join(certs, "cert.pem"), Key: filepath.Join(certs, "key.pem")}}},
		{"tcp without a port: 2375", map[string]string{"DOCKER_HOST": "tcp://build-host"}, "", Endpoint{Host: "tcp://build-host:2375", Context: "default"}},
		{"tcp without a host: localhost", map[string]string{"DOCKER_HOST": "tcp://:2376"}, "", Endpoint{Host: "tcp://localhost:2376", Context: "default"}},
		{"ssh with the far side's socket", map[string]string{"DOCKER_HOST": "ssh://me@h/run/user/1000/docker.sock"}, "", Endpoint{Host: "ssh://me@h/run/user/1000/docker.sock", Context: "default"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]string{"currentContext": c.current})
			if err := os.WriteFile(filepath.Join(cfg, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"DOCKER_CONFIG": cfg}
			for k, v := range c.env {
				env[k] = v
			}
			got, err := fromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("fromEnv = %+v (TLS %+v), want %+v (TLS %+v)", got, got.TLS, c.want, c.want.TLS)
			}
		})
	}
}

func TestFromEnvRefuses(t *testing.T) {
	cfg := t.TempDir()
	for _, c := range []struct {
		name string
		env  map[string]string
		is   error
	}{
		{"unknown context", map[string]string{"DOCKER_CONTEXT": "nope"}, ErrNoContext},
		{"unknown scheme", map[string]string{"DOCKER_HOST": "ftp://h"}, nil},
		{"no address", map[string]string{"DOCKER_HOST": "tcp://"}, nil},
		{"ssh with a query", map[string]string{"DOCKER_HOST": "ssh://me@h?x=1"}, nil},
		{"ssh with a password", map[string]string{"DOCKER_HOST": "ssh://me:secret@h"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"DOCKER_CONFIG": cfg}
			for k, v := range c.env {
				env[k] = v
			}
			_, err := fromEnv(func(k string) string { return env[k] })
			if err == nil {
				t.Fatal("no error")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
}

// A child given Env reaches the endpoint its parent had, whatever the
// parent's own environment says.
func TestEnvRoundTrip(t *testing.T) {
	cfg := t.TempDir()
	writeContext(t, cfg, "remote", "tcp://10.0.0.1:2376", false, "ca.pem")
	certs := t.TempDir()
	parent := map[string]string{"DOCKER_CONFIG": cfg, "DOCKER_HOST": "unix:///other.sock", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/elsewhere"}
	for _, ep := range []Endpoint{
		{Host: "tcp://10.0.0.1:2376", Context: "remote", TLS: &TLS{CA: filepath.Join(cfg, "contexts", "tls", contextID("remote"), "docker", "ca.pem")}},
		{Host: "tcp://h:2376", Context: "default", TLS: &TLS{CA: filepath.Join(certs, "ca.pem")}},
		{Host: "unix:///run/d.sock", Context: "default"},
		{Host: "ssh://me@h", Context: "default"},
	} {
		env := map[string]string{}
		for k, v := range parent {
			env[k] = v
		}
		for _, kv := range ep.Env() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		got, err := fromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ep) {
			t.Errorf("child of %v reaches %+v (TLS %+v)", ep, got, got.TLS)
		}
	}
}

func TestSSHArgs(t *testing.T) {
	for host, want := range map[string]string{
		"ssh://linux":         "linux",
		"ssh://me@xbox":       "xbox",
		"ssh://me@h:2222":     "h:2222",
		"ssh://[::1]":         "[::1]",
		"ssh://me@[::1]:2222": "[::1]:2222",
	} {
		tg, err := parseSSH(host)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.hostPort(); got != want {
			t.Errorf("host of %s = %q, want %q", host, got, want)
		}
	}
	for host, want := range map[string][]string{
		"ssh://me@h/run/user/1000/docker.sock": {"-o", "ConnectTimeout=30", "-T", "-l", "me", "--", "h", "docker", "--host", "unix:///run/user/1000/docker.sock", "system", "dial-stdio"},
		"ssh://h":                              {"-o", "ConnectTimeout=30", "-T", "--", "h", "docker", "system", "dial-stdio"},
		"ssh://me@h:2222":                      {"-o", "ConnectTimeout=30", "-T", "-l", "me", "-p", "2222", "--", "h", "docker", "system", "dial-stdio"},
		"ssh://me@[::1]:2222/":                 {"-o", "ConnectTimeout=30", "-T", "-l", "me", "-p", "2222", "--", "::1", "docker", "system", "dial-stdio"},
	} {
		tg, err := parseSSH(host)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.sshArgs(); !reflect.DeepEqual(got, want) {
			t.Errorf("ssh args of %s = %q, want %q", host, got, want)
		}
	}
}
