package dockerhost

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// sshTarget is where an ssh:// host points.
type sshTarget struct {
	user, host, port string
	// socket is the daemon's socket on the far side ("": its default).
	socket string
}

func parseSSH(host string) (sshTarget, error) {
	u, err := url.Parse(host)
	if err != nil {
		return sshTarget{}, fmt.Errorf("docker host %q: %w", host, err)
	}
	if u.Scheme != "ssh" || u.Hostname() == "" {
		return sshTarget{}, fmt.Errorf("docker host %q: want ssh://[USER@]HOST[:PORT]", host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return sshTarget{}, fmt.Errorf("docker host %q: an ssh:// address takes no query", host)
	}
	if _, ok := u.User.Password(); ok {
		return sshTarget{}, fmt.Errorf("docker host %q: a password in the address is not used (use ssh keys or an agent)", host)
	}
	t := sshTarget{user: u.User.Username(), host: u.Hostname(), port: u.Port()}
	if u.Path != "" && u.Path != "/" {
		// The daemon's socket on the far side, as the Docker CLI takes it.
		t.socket = u.Path
	}
	return t, nil
}

// hostPort is the target's host and port as a URL names them.
func (t sshTarget) hostPort() string {
	if t.port != "" {
		return net.JoinHostPort(t.host, t.port)
	}
	if strings.Contains(t.host, ":") {
		return "[" + t.host + "]" // IPv6
	}
	return t.host
}

// sshArgs are the arguments of the ssh client that connects the far
// side's `docker system dial-stdio` to its stdio, as the Docker CLI runs it.
func (t sshTarget) sshArgs() []string {
	args := []string{"-o", "ConnectTimeout=30", "-T"}
	if t.user != "" {
		args = append(args, "-l", t.user)
	}
	if t.port != "" {
		args = append(args, "-p", t.port)
	}
	args = append(args, "--", t.host, "docker")
	if t.socket != "" {
		args = append(args, "--host", "unix://"+t.socket)
	}
	return append(args, "system", "dial-stdio")
}

// sshCommand is the ssh client run for a connection (a variable for tests
// that stand a program in for it).
var sshCommand = "ssh"

// dialSSH starts the ssh client for one connection. The process lives as
// long as the connection, not as long as ctx (a client keeps connections
// between requests): ctx only bounds the start.
func dialSSH(ctx context.Context, host string) (net.Conn, error) {
	t, err := parseSSH(host)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(sshCommand, t.sshArgs()...) //nolint:gosec,noctx // the user's ssh, for the user's host; it outlives ctx on purpose
	ownSession(cmd)
	// Close never waits long for ssh's stderr (a master connection it
	// started may keep it open).
	cmd.WaitDelay = 2 * time.Second
	// ssh's stdout is a pipe of our own, not cmd.StdoutPipe: Wait closes
	// that one as ssh exits, and a read of the last bytes ssh wrote (or of
	// the end) would then fail with "file already closed". Made first:
	// nothing else is open yet if it fails.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = stdout.Close()
		_ = w.Close()
		return nil, err
	}
	cmd.Stdout = w
	c := &sshConn{cmd: cmd, in: stdin, out: stdout, host: host, exited: make(chan struct{})}
	cmd.Stderr = &c.stderr
	err = cmd.Start()
	_ = w.Close() // ssh holds its own copy
	if err != nil {
		_ = stdout.Close()
		return nil, fmt.Errorf("connecting to %s: starting ssh: %w", host, err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// sshConn is a connection carried by an ssh client's stdio.
type sshConn struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	host   string
	stderr tail
	once   sync.Once
	// exited is closed once ssh has ended, waitErr then says how.
	exited  chan struct{}
	waitErr error
}

func (c *sshConn) Read(p []byte) (int, error) {
	n, err := c.out.Read(p)
	if err != nil {
		err = c.why(err)
	}
	return n, err
}

// why is err, the end of ssh's output, with ssh's own words when ssh
// failed (refused, no docker on the far side, ...). A stream that ended
// as ssh exited well stays a plain io.EOF, whatever ssh said on the way
// (a warning about known hosts).
func (c *sshConn) why(err error) error {
	select {
	case <-c.exited:
	case <-time.After(time.Second):
		return err
	}
	if c.waitErr == nil || c.stderr.String() == "" {
		return err
	}
	return fmt.Errorf("ssh to %s: %s: %w", c.host, c.stderr.String(), err)
}

func (c *sshConn) Write(p []byte) (int, error) { return c.in.Write(p) }

// Close ends the ssh client: the conversation on it is over.
func (c *sshConn) Close() error {
	c.once.Do(func() {
		_ = c.in.Close()
		_ = c.cmd.Process.Kill()
		<-c.exited
		_ = c.out.Close()
	})
	return nil
}

func (c *sshConn) LocalAddr() net.Addr  { return sshAddr(c.host) }
func (c *sshConn) RemoteAddr() net.Addr { return sshAddr(c.host) }

// Deadlines are not kept on a process's pipes; no caller of a Docker
// client sets them.
func (c *sshConn) SetDeadline(time.Time) error      { return nil }
func (c *sshConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sshConn) SetWriteDeadline(time.Time) error { return nil }

type sshAddr string

func (a sshAddr) Network() string { return "ssh" }
func (a sshAddr) String() string  { return string(a) }

// tail keeps the last bytes written to it (ssh's stderr).
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = t.buf[len(t.buf)-tailMax:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
