package dockerhost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Client is a client of the daemon at e, with opts after those e needs.
func (e Endpoint) Client(opts ...client.Opt) (*client.Client, error) {
	return e.ClientDialing(nil, opts...)
}

// ClientDialing is a client of the daemon at e whose every connection is
// made by dial (nil: as e says); dial must give a connection ready for
// HTTP (over TLS, the handshake done: see Dial).
func (e Endpoint) ClientDialing(dial func(ctx context.Context) (net.Conn, error), opts ...client.Opt) (*client.Client, error) {
	base, err := e.options(dial)
	if err != nil {
		return nil, err
	}
	cli, err := client.New(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", e, err)
	}
	return cli, nil
}

// Dial makes one connection to the daemon, ready for HTTP: over TLS, the
// handshake is done; over ssh, it is the ssh process's stdio. ctx bounds
// the dial.
func (e Endpoint) Dial(ctx context.Context) (net.Conn, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	scheme, addr, _ := strings.Cut(e.Host, "://")
	switch {
	case scheme == "ssh":
		return dialSSH(ctx, e.Host)
	case e.TLS != nil && (scheme == "tcp" || scheme == "https"):
		cfg, err := e.TLS.config()
		if err != nil {
			return nil, err
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}
		conn, err := d.DialContext(ctx, "tcp", hostOnly(addr))
		if err != nil {
			return nil, fmt.Errorf("dialling %s: %w", e, err)
		}
		return conn, nil
	}
	cli, err := e.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	conn, err := cli.Dialer()(ctx)
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", e, err)
	}
	return conn, nil
}

// dialTimeout bounds a TCP dial, as the Docker client's.
const dialTimeout = 30 * time.Second

// hostOnly is a tcp address without the path it may carry.
func hostOnly(addr string) string {
	h, _, _ := strings.Cut(addr, "/")
	return h
}

// String names the endpoint as a user would know it.
func (e Endpoint) String() string {
	if e.Context != "" && e.Context != "default" {
		return fmt.Sprintf("%s (Docker context %s)", e.Host, e.Context)
	}
	return e.Host
}

// options are the client options of e; dial, when not nil, makes every
// connection.
func (e Endpoint) options(dial func(context.Context) (net.Conn, error)) ([]client.Opt, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if e.TLS != nil && !strings.HasPrefix(e.Host, "ssh://") {
		c, err := e.TLS.config()
		if err != nil {
			return nil, err
		}
		tlsConfig = c
	}
	opts := []client.Opt{client.WithAPIVersionFromEnv()}
	if strings.HasPrefix(e.Host, "ssh://") {
		// An ssh connection of ours left idle for 30 s is closed (its
		// processes end), as the Docker client's are; the caller's are
		// the caller's (see below).
		idle := time.Duration(0)
		if dial == nil {
			host := e.Host
			dial = func(ctx context.Context) (net.Conn, error) { return dialSSH(ctx, host) }
			idle = 30 * time.Second
		}
		// The client's host says where it goes (its DaemonHost); its
		// connections come from ssh, never from a lookup of that name.
		t, err := parseSSH(e.Host)
		if err != nil {
			return nil, err
		}
		return append(opts, client.WithHost("ssh://"+t.hostPort()), ownTransport(dial, nil, idle)), nil
	}
	if tlsConfig != nil && dial == nil {
		opts = append(opts, client.WithHTTPClient(&http.Client{
			Transport:     &http.Transport{TLSClientConfig: tlsConfig},
			CheckRedirect: client.CheckRedirect,
		}))
	}
	opts = append(opts, client.WithHost(e.Host))
	if dial != nil {
		// The caller's connections are the caller's to close: one it
		// hands out again and again (lifecycle's one connection) must
		// not be dropped for being idle.
		opts = append(opts, ownTransport(dial, tlsConfig, 0))
	}
	return opts, nil
}

// ownTransport gives the client a transport whose every connection dial
// makes (past its TLS handshake when tlsConfig is set), never through a
// proxy the environment names (the connection is the daemon's already),
// closed once idle that long (0: never).
func ownTransport(dial func(context.Context) (net.Conn, error), tlsConfig *tls.Config, idle time.Duration) client.Opt {
	tr := &http.Transport{
		DialContext:        func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConns:       6,
		IdleConnTimeout:    idle,
		DisableCompression: true,
	}
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig
		tr.DialTLSContext = tr.DialContext
	}
	return client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect})
}

// config is the TLS configuration of t.
func (t *TLS) config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.SkipVerify} //nolint:gosec // asked for: DOCKER_TLS without DOCKER_TLS_VERIFY
	if t.CA != "" && !t.SkipVerify {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("reading the daemon's CA certificate: %w", err)
		}
		// Added to the system's roots, as the Docker client does.
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
