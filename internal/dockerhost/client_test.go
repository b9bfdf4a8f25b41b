package dockerhost

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// pingHandler answers as a daemon's /_ping does.
var pingHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	_, _ = io.WriteString(w, "OK")
})

type certs struct{ dir, ca, cert, key string }

// makeCerts writes a CA, and a client certificate it signs, to a temp dir;
// it returns them with the server's TLS certificate.
func makeCerts(t *testing.T) (certs, tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, err := x509.ParseCertificate(caDER)
	must(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(t, err)
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	c := certs{dir: dir, ca: write("ca.pem", "CERTIFICATE", caDER)}
	der, key := issue(2, x509.ExtKeyUsageClientAuth)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	c.cert, c.key = write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
	sder, skey := issue(3, x509.ExtKeyUsageServerAuth)
	return c, tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: skey}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A daemon on TCP that wants TLS and a client certificate is reached with
// the CA and client certificate of the endpoint, through every client this
// package makes; without them it is not.
func TestTLS(t *testing.T) {
	c, serverCert := makeCerts(t)
	srv := httptest.NewUnstartedServer(pingHandler)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(c.ca)
	must(t, err)
	pool.AppendCertsFromPEM(caPEM)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	host := "tcp://" + srv.Listener.Addr().String()
	ping := func(cli *client.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cli.Ping(ctx, client.PingOptions{})
		return err
	}

	// As DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=dir give it.
	ep, err := fromEnv(func(k string) string {
		return map[string]string{"DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": c.dir}[k]
	})
	must(t, err)
	cli, err := ep.Client()
	must(t, err)
	defer cli.Close()
	if err := ping(cli); err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}

	// One connection, dialled once and used for every request.
	conn, err := ep.Dial(context.Background())
	must(t, err)
	defer conn.Close()
	dials := 0
	one, err := ep.ClientDialing(func(context.Context) (net.Conn, error) {
		dials++
		if dials > 1 {
			return nil, errors.New("dialled twice")
		}
		return conn, nil
	})
	must(t, err)
	for i := range 3 {
		if err := ping(one); err != nil {
			t.Fatalf("ping %d on one TLS connection: %v", i, err)
		}
	}

	// Without a client certificate, or trusting another CA: refused.
	for name, bad := range map[string]*TLS{
		"no client certificate": {CA: c.ca},
		"another CA":            {CA: c.cert, Cert: c.cert, Key: c.key},
	} {
		cli, err := Endpoint{Host: host, TLS: bad}.Client()
		if err == nil {
			err = ping(cli)
			cli.Close()
		}
		if err == nil {
			t.Errorf("%s: the daemon answered", name)
		}
	}
	// DOCKER_TLS without DOCKER_TLS_VERIFY: the server is not checked.
	cli2, err := Endpoint{Host: host, TLS: &TLS{SkipVerify: true, Cert: c.cert, Key: c.key}}.Client()
	must(t, err)
	defer cli2.Close()
	if err := ping(cli2); err != nil {
		t.Errorf("unverified TLS: %v", err)
	}
}

// fakeSSHEnv makes this test binary stand in for ssh: it records its
// arguments and joins its stdio to the unix socket named there.
const fakeSSHEnv = "DOCKERHOST_FAKE_SSH"

func TestMain(m *testing.M) {
	if spec := os.Getenv(fakeSSHEnv); spec != "" {
		os.Exit(fakeSSH(spec))
	}
	os.Exit(m.Run())
}

// fakeSSH: spec is "SOCKET ARGSFILE"; a socket "refuse" fails as ssh does.
func fakeSSH(spec string) int {
	sock, argsFile, _ := strings.Cut(spec, " ")
	_ = os.WriteFile(argsFile, []byte(strings.Join(os.Args[1:], " ")), 0o600)
	if sock == "hello" {
		fmt.Fprintln(os.Stderr, "Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.")
		fmt.Print("hello")
		return 0
	}
	if sock == "refuse" {
		fmt.Fprintln(os.Stderr, "root@127.0.0.1: Permission denied (publickey).")
		return 255
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _, _ = io.Copy(conn, os.Stdin); _ = conn.(*net.UnixConn).CloseWrite() }()
	_, _ = io.Copy(os.Stdout, conn)
	return 0
}

// An ssh:// host runs ssh with the Docker CLI's arguments and speaks HTTP
// through its stdio; ssh's own words come back when it fails.
func TestSSH(t *testing.T) {
	dir, err := os.MkdirTemp("", "ssh")
	must(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "d.sock")
	l, err := net.Listen("unix", sock)
	must(t, err)
	srv := &http.Server{Handler: pingHandler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	self, err := os.Executable()
	must(t, err)
	prev := sshCommand
	sshCommand = self
	defer func() { sshCommand = prev }()
	argsFile := filepath.Join(dir, "args")

	t.Setenv(fakeSSHEnv, sock+" "+argsFile)
	cli, err := Endpoint{Host: "ssh://builder@build-host:2222"}.Client()
	must(t, err)
	defer cli.Close()
	if got, want := cli.DaemonHost(), "ssh://build-host:2222"; got != want {
		t.Errorf("DaemonHost = %q, want %q", got, want)
	}
	if _, err := cli.Ping(context.Background(), client.PingOptions{}); err != nil {
		t.Fatalf("ping over ssh: %v", err)
	}
	args, err := os.ReadFile(argsFile)
	must(t, err)
	if want := "-o ConnectTimeout=30 -T -l builder -p 2222 -- build-host docker system dial-stdio"; string(args) != want {
		t.Errorf("ssh ran with %q, want %q", args, want)
	}

	// A stream that ends as ssh exits well is a plain end, whatever ssh
	// said on stderr on the way.
	t.Setenv(fakeSSHEnv, "hello "+argsFile)
	conn, err := dialSSH(context.Background(), "ssh://h")
	must(t, err)
	got, err := io.ReadAll(conn)
	if string(got) != "hello" || err != nil {
		t.Errorf("read %q, %v: want hello and a clean end", got, err)
	}
	must(t, conn.Close())

	t.Setenv(fakeSSHEnv, "refuse "+argsFile)
	cli2, err := Endpoint{Host: "ssh://root@127.0.0.1"}.Client()
	must(t, err)
	defer cli2.Close()
	_, err = cli2.Ping(context.Background(), client.PingOptions{})
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("ping through a refusing ssh: %v, want ssh's words", err)
	}
}
