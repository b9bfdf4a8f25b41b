package dockerhost

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// On Windows the daemon's default is a named pipe, and an npipe:// host
// makes clients as a unix socket does elsewhere.
func TestNamedPipe(t *testing.T) {
	if got := DefaultHost(); got != "npipe:////./pipe/docker_engine" {
		t.Errorf("DefaultHost = %q", got)
	}
	ep, err := fromEnv(func(k string) string {
		return map[string]string{"DOCKER_HOST": "npipe:////./pipe/imgutil_test_missing"}[k]
	})
	must(t, err)
	cli, err := ep.Client()
	must(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err == nil {
		t.Error("a pipe no one serves answered")
	}
	// One connection given by the caller, as the lifecycle's client has.
	a, b := net.Pipe()
	defer a.Close()
	go func() { _ = http.Serve(&oneListener{conn: b}, pingHandler) }()
	one, err := ep.ClientDialing(func(context.Context) (net.Conn, error) { return a, nil })
	must(t, err)
	if _, err := one.Ping(context.Background(), client.PingOptions{}); err != nil {
		t.Errorf("ping on the given connection: %v", err)
	}
	if !strings.HasPrefix(one.DaemonHost(), "npipe://") {
		t.Errorf("DaemonHost = %q", one.DaemonHost())
	}
}

// oneListener hands out one connection, then waits.
type oneListener struct {
	conn net.Conn
	done bool
}

func (l *oneListener) Accept() (net.Conn, error) {
	if !l.done {
		l.done = true
		return l.conn, nil
	}
	select {}
}
func (l *oneListener) Close() error   { return nil }
func (l *oneListener) Addr() net.Addr { return l.conn.LocalAddr() }
