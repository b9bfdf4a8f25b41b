package testhelpers

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// NewLifecycleClient returns a Docker client of the daemon whose clients
// name host (DaemonHost: a unix socket as the lifecycle's, or TCP, TLS, ssh
// as the test reached it) that talks as the lifecycle's does when it runs as root
// against a root-owned socket: ONE connection, dialled now and returned by
// every dial; closing it does nothing (the lifecycle could not reopen the
// socket after dropping privileges); a dial while it is in use fails with
// "singleton connection already in use". A response body closed before its
// end leaves its bytes on that connection, and the next request reads them
// as its own answer, as it does in the lifecycle.
//
// When the test ends the client asks the daemon for a ping on that same
// connection: a call that left bytes unread (or a connection the daemon
// dropped) fails the test there, even if nothing came after it. Then the
// connection is really closed.
func NewLifecycleClient(tb testing.TB, host string) *client.Client {
	tb.Helper()
	ep := endpointOf(host)
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	raw, err := ep.Dial(dctx)
	cancel()
	if err != nil {
		tb.Fatalf("dialling %s: %v", host, err)
	}
	conn := &unclosableConn{Conn: raw}
	cli, err := ep.ClientDialing(func(context.Context) (net.Conn, error) {
		if !conn.inUse.CompareAndSwap(false, true) {
			return nil, errors.New("singleton connection already in use")
		}
		return conn, nil
	})
	if err != nil {
		_ = raw.Close()
		tb.Fatalf("client for %s: %v", host, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
			tb.Errorf("the single connection no longer serves a request after the test (a response left unread?): %v", err)
		}
		_ = cli.Close()
		_ = raw.Close()
	})
	return cli
}

// unclosableConn is the lifecycle's connection: Close only marks it free.
type unclosableConn struct {
	net.Conn
	inUse atomic.Bool
}

func (c *unclosableConn) Close() error {
	c.inUse.Store(false)
	return nil
}
