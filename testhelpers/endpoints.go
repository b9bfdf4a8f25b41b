package testhelpers

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil/internal/dockerhost"
)

// endpoints are the daemons tests reached, by the host their clients name
// (DaemonHost): how to reach each again, from this process or a child.
var endpoints sync.Map // string -> dockerhost.Endpoint

// endpointOf is how to reach the daemon whose client names host: as this
// process reached it, else host itself.
func endpointOf(host string) dockerhost.Endpoint {
	if ep, ok := endpoints.Load(host); ok {
		return ep.(dockerhost.Endpoint)
	}
	return dockerhost.Endpoint{Host: host, Context: "default"}
}

// clientOf returns a client of ep and remembers how it was reached.
func clientOf(ep dockerhost.Endpoint) (*client.Client, error) {
	cli, err := ep.Client()
	if err != nil {
		return nil, err
	}
	endpoints.Store(cli.DaemonHost(), ep)
	return cli, nil
}

// endpointNamed is the endpoint a DaemonsEnv entry gives: a host
// (unix://, npipe://, tcp://, ssh://) or the name of a Docker context.
func endpointNamed(s string) (dockerhost.Endpoint, error) {
	if strings.Contains(s, "://") {
		return dockerhost.Endpoint{Host: s, Context: "default"}, nil
	}
	return dockerhost.FromContext(s)
}

// DaemonEnv is the environment a child process needs to reach the daemon
// whose client names host (DaemonHost) as this process does: DOCKER_HOST,
// or DOCKER_CONTEXT with the TLS material it holds. Put it after
// os.Environ(): the later value wins.
func DaemonEnv(host string) []string {
	return endpointOf(host).Env()
}

// DaemonEnvWithoutContext is DaemonEnv without a Docker context: a daemon
// reached through one is named by DOCKER_HOST, DOCKER_TLS_VERIFY and
// DOCKER_CERT_PATH (the context's TLS files) instead; ok is false when the
// daemon was reached through no context.
func DaemonEnvWithoutContext(host string) (env []string, ok bool) {
	ep := endpointOf(host)
	if ep.Context == "" || ep.Context == "default" {
		return nil, false
	}
	ep.Context = "default"
	return ep.Env(), true
}

// DaemonDialer returns a function that makes one connection to the daemon
// whose client names host, ready for HTTP (over TLS, past its handshake;
// over ssh, an ssh client's stdio), for tests that stand between a client
// and its daemon.
func DaemonDialer(host string) func(ctx context.Context) (net.Conn, error) {
	ep := endpointOf(host)
	return ep.Dial
}

// mustEndpoint fails tb when s names no endpoint.
func mustEndpoint(tb testing.TB, s string) dockerhost.Endpoint {
	tb.Helper()
	ep, err := endpointNamed(s)
	if err != nil {
		tb.Fatalf("%s: %v", DaemonsEnv, err)
	}
	return ep
}
