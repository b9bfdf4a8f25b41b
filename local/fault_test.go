package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

// faultProxy stands between a Docker client and a real daemon on a Unix
// socket of its own and injects faults into image loads and saves.
type faultProxy struct {
	client *client.Client
	// failLoad answers loads with a daemon error; cutLoadAfter cuts a
	// load's body after so many bytes; slowLoad stalls it; cutSaveAfter
	// cuts an ImageSave stream after so many bytes.
	failLoad     atomic.Bool
	cutLoadAfter atomic.Int64
	slowLoad     atomic.Bool
	cutSaveAfter atomic.Int64
	// dropLoadConns: so many loads next have their connection closed,
	// with no answer, once 64 KiB of the archive was read (the daemon
	// never sees them), as moby's HTTP server closes the connection of a
	// load it answered early (see testCutLoadSentAgain).
	dropLoadConns atomic.Int64
	// stallSave holds every ImageSave stream after its first bytes until
	// the request ends.
	stallSave atomic.Bool
	// tamperSave, when set, rewrites every ImageSave stream (read whole).
	tamperSave func(t *testing.T, archive []byte) []byte
	t          *testing.T
	// loads and saves count the ImageLoad and ImageSave requests.
	loads, saves atomic.Int64
	// lateLoadAnswer lets the daemon finish a load whatever the client does,
	// then holds its answer back, signalling answerHeld: a cancel then
	// comes after the archive was taken.
	lateLoadAnswer atomic.Bool
	answerHeld     chan struct{}
	// removeProbe removes the next manifest probe's image from the daemon
	// just before its export (as a prune or another build's cleanup may);
	// probeSaves counts the exports of probes.
	removeProbe atomic.Bool
	probeSaves  atomic.Int64
	// release, when set, holds that answer until it is closed (else two
	// seconds).
	release chan struct{}
}

// heldWriter keeps a response until release.
type heldWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (h *heldWriter) Header() http.Header         { return h.header }
func (h *heldWriter) Write(b []byte) (int, error) { return h.body.Write(b) }
func (h *heldWriter) WriteHeader(code int)        { h.code = code }

var errCut = errors.New("connection cut by the test")

type cutReader struct {
	r    io.ReadCloser
	left int64
	slow bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.slow {
		time.Sleep(200 * time.Millisecond)
	}
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }

// stallReader gives the first bytes of r, then nothing until done.
type stallReader struct {
	r    io.ReadCloser
	done <-chan struct{}
	sent bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		return s.r.Read(p[:min(len(p), 512)])
	}
	<-s.done
	return 0, errCut
}

func (s *stallReader) Close() error { return s.r.Close() }

func startFaultProxy(t *testing.T, daemon *client.Client) *faultProxy {
	sockDir, err := os.MkdirTemp("", "fp")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	dial := testhelpers.DaemonDialer(daemon.DaemonHost())
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "docker"
			pr.Out = pr.Out.WithContext(pr.In.Context())
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx)
		}},
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if strings.HasSuffix(resp.Request.URL.Path, "/get") {
				if cut := fp(resp.Request).cutSaveAfter.Load(); cut > 0 {
					resp.Body = &cutReader{r: resp.Body, left: cut}
				}
				if f := fp(resp.Request).tamperSave; f != nil {
					raw, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						return err
					}
					out := f(fp(resp.Request).t, raw)
					resp.Body = io.NopCloser(bytes.NewReader(out))
					resp.ContentLength = int64(len(out))
					resp.Header.Del("Content-Length")
				}
				if fp(resp.Request).stallSave.Load() {
					resp.Body = &stallReader{r: resp.Body, done: resp.Request.Context().Done()}
				}
			}
			return nil
		},
	}
	p := &faultProxy{t: t}
	l, err := net.Listen("unix", sock)
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), proxyKey{}, p))
		if strings.HasSuffix(r.URL.Path, "/images/get") {
			p.saves.Add(1)
			if names := r.URL.Query()["names"]; len(names) == 1 && strings.Contains(names[0], "imgutil-probe/") {
				p.probeSaves.Add(1)
				if p.removeProbe.CompareAndSwap(true, false) {
					_, err := daemon.ImageRemove(r.Context(), names[0], client.ImageRemoveOptions{Force: true})
					must(t, err)
				}
			}
		}
		if strings.HasSuffix(r.URL.Path, "/images/load") {
			p.loads.Add(1)
			switch {
			case p.dropLoadConns.Add(-1) >= 0:
				_, _ = io.CopyN(io.Discard, r.Body, 64<<10)
				conn, _, err := http.NewResponseController(w).Hijack()
				must(t, err)
				_ = conn.Close()
				return
			case p.failLoad.Load():
				// As a daemon that reads the archive before it fails.
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"message":"injected load failure"}`))
				return
			case p.lateLoadAnswer.Load():
				held := &heldWriter{header: http.Header{}, code: http.StatusOK}
				rp.ServeHTTP(held, r.WithContext(context.WithoutCancel(r.Context())))
				close(p.answerHeld)
				if p.release != nil {
					<-p.release
				} else {
					time.Sleep(2 * time.Second)
				}
				for k, v := range held.header {
					w.Header()[k] = v
				}
				w.WriteHeader(held.code)
				_, _ = w.Write(held.body.Bytes())
				return
			case p.cutLoadAfter.Load() > 0 || p.slowLoad.Load():
				left := p.cutLoadAfter.Load()
				if left == 0 {
					left = 1 << 40
				}
				r.Body = &cutReader{r: r.Body, left: left, slow: p.slowLoad.Load()}
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	cli, err := client.New(client.WithHost("unix://" + sock))
	must(t, err)
	t.Cleanup(func() { cli.Close() })
	p.client = cli
	return p
}

// cutClient is a client whose connection a test cuts or abandons (a cut
// stream, a cancelled request): a connection the lifecycle's client could
// not use again whoever cut it, so newImage does not make it one
// connection for every call (it still makes calls one at a time).
type cutClient struct{ *client.Client }

type proxyKey struct{}

func fp(r *http.Request) *faultProxy { return r.Context().Value(proxyKey{}).(*faultProxy) }

// imageID returns the ID the daemon holds under name, "" when none.
func imageID(t *testing.T, cli *client.Client, name string) string {
	res, err := cli.ImageInspect(context.Background(), name)
	if err != nil {
		return ""
	}
	return res.ID
}

// testFaults injects each fault into a rebuild saved over an existing tag:
// the save fails saying what failed, the tag still points at the image it
// pointed at, and no staging tag or temp file of ours is left.
func testFaults(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	name := freshName(t, cli)
	first := newImage(t, cli, name, local.FromBaseImage(f.base))
	must(t, first.Save())

	for _, tc := range []struct {
		name   string
		inject func(p *faultProxy)
		want   string
	}{
		{"DaemonErrorOnLoad", func(p *faultProxy) { p.failLoad.Store(true) }, "injected load failure"},
		{"CutMidLoad", func(p *faultProxy) { p.cutLoadAfter.Store(48 << 10) }, ""},
		{"CutMidSaveStream", func(p *faultProxy) { p.cutSaveAfter.Store(4 << 10) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := imageID(t, cli, name)
			p := startFaultProxy(t, cli)
			tc.inject(p)
			var c local.DockerClient = p.client
			if tc.name != "DaemonErrorOnLoad" {
				c = cutClient{p.client}
			}
			img := newImage(t, c, name, local.FromBaseImage(f.base), local.WithPreviousImage(f.previous))
			if tc.name == "CutMidSaveStream" {
				// A rebase onto the base's own stack puts the reused layer on
				// a chain the daemon lacks: its bytes must be read back.
				must(t, img.ReuseLayer(f.appIDs[1]))
			} else {
				must(t, img.ReuseLayer(f.appIDs[0]))
			}
			l, _ := testhelpers.RandomLayerFile(t, 256<<10)
			must(t, img.AddLayer(l))
			err := img.Save()
			var se imgutil.SaveError
			if tc.name == "CutMidSaveStream" && err == nil {
				// The daemon held what was needed: nothing was read back.
				testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
				return
			}
			if !errors.As(err, &se) {
				t.Fatalf("Save with %s = %v, want a SaveError", tc.name, err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.name == "DaemonErrorOnLoad" && (p.loads.Load() != 1 || p.saves.Load() != 0) {
				// A failure that is no refusal of the partial archive is the
				// answer: nothing is read back nor sent again.
				t.Errorf("after a daemon error the save made %d loads and %d image reads, want 1 and 0", p.loads.Load(), p.saves.Load())
			}
			t.Logf("%s: %v", tc.name, err)
			if got := imageID(t, cli, name); got != before {
				t.Fatalf("after a failed save %s points at %s, not %s", name, got, before)
			}
			assertNoStagingTags(t, cli)
		})
	}

	t.Run("CancelledLayerRead", func(t *testing.T) {
		img := newImage(t, cli, freshName(t, cli), local.FromBaseImage(f.previous))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := img.GetLayerContext(ctx, f.appIDs[0]); !errors.Is(err, context.Canceled) {
			t.Errorf("GetLayerContext with a cancelled context = %v, want context.Canceled", err)
		}
		// A cancellation is not a daemon failure: it is not remembered.
		testhelpers.CheckGetLayer(t, img.GetLayer, f.appIDs[0])
		if _, err := img.SaveFileContext(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("SaveFileContext with a cancelled context = %v, want context.Canceled", err)
		}
	})

	t.Run("CancelAfterTheLoad", func(t *testing.T) {
		before := imageID(t, cli, name)
		p := startFaultProxy(t, cli)
		p.answerHeld = make(chan struct{})
		p.lateLoadAnswer.Store(true)
		img := newImage(t, cutClient{p.client}, name, local.FromBaseImage(f.base))
		l, _ := testhelpers.RandomLayerFile(t, 1<<20)
		must(t, img.AddLayer(l))
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-p.answerHeld; cancel() }()
		err := img.SaveAsContext(ctx, name)
		after := imageID(t, cli, name)
		// The answer must be true: the tag moved and the save says so, or
		// it did not and the save failed.
		switch {
		case err == nil && after == before:
			t.Errorf("the save succeeded but %s still points at %s", name, before)
		case err != nil && after != before:
			t.Errorf("the save failed (%v) but %s moved to %s", err, name, after)
		}
		if err == nil {
			id, _ := img.Identifier()
			if "sha256:"+id.String() != after {
				t.Errorf("Identifier() = %s, the daemon has %s", id, after)
			}
		}
		assertNoStagingTags(t, cli)
	})
	t.Run("CancelMidLoad", func(t *testing.T) {
		before := imageID(t, cli, name)
		p := startFaultProxy(t, cli)
		p.slowLoad.Store(true)
		img := newImage(t, cutClient{p.client}, name, local.FromBaseImage(f.base))
		l, _ := testhelpers.RandomLayerFile(t, 4<<20)
		must(t, img.AddLayer(l))
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(300 * time.Millisecond); cancel() }()
		start := time.Now()
		err := img.SaveAsContext(ctx, name)
		if since := time.Since(start); since > 300*time.Millisecond+time.Second {
			t.Errorf("a cancelled save returned after %v", since)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled save = %v, want context.Canceled", err)
		}
		if got := imageID(t, cli, name); got != before {
			t.Fatalf("after a cancelled save %s points at %s, not %s", name, got, before)
		}
	})
}

func assertNoStagingTags(t *testing.T, cli *client.Client) {
	images, err := cli.ImageList(context.Background(), client.ImageListOptions{All: true})
	must(t, err)
	for _, im := range images.Items {
		for _, tag := range im.RepoTags {
			if strings.Contains(tag, "imgutil-staging") {
				t.Fatalf("a staging tag survived: %s", tag)
			}
		}
	}
}

// testConcurrentReads: many goroutines asking for layers of one image
// share one download; a failed download is returned to every one of them.
func testConcurrentReads(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	for _, fail := range []bool{false, true} {
		counting := &countingClient{Client: testhelpers.NewLifecycleClient(t, cli.DaemonHost())}
		if fail {
			counting.failSave = errors.New("injected save failure")
		}
		store := local.NewStore(testhelpers.NewSingleConnClient(t, counting))
		img, err := local.NewImageInStore(context.Background(), store, freshName(t, cli), local.FromBaseImage(f.previous))
		must(t, err)
		errs := make(chan error, 8)
		for i := range 8 {
			go func() {
				rc, err := img.GetLayer(f.appIDs[i%2])
				if err == nil {
					_, err = io.Copy(io.Discard, rc)
					rc.Close()
				}
				errs <- err
			}()
		}
		for range 8 {
			err := <-errs
			if fail != (err != nil) {
				t.Errorf("fail=%v: a concurrent GetLayer returned %v", fail, err)
			}
		}
		if n := counting.saves.Load(); n != 1 {
			t.Errorf("fail=%v: 8 concurrent reads streamed the image %d times, want 1", fail, n)
		}
		must(t, store.Close())
	}
}

// testEveryWaiterHasItsDeadline: a layer read that joins a read of the
// same image already under way (here a stalled daemon stream) gives up at
// its own deadline, not the first reader's.
func testEveryWaiterHasItsDeadline(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	p := startFaultProxy(t, cli)
	p.stallSave.Store(true)
	img := newImage(t, cutClient{p.client}, freshName(t, cli), local.FromBaseImage(f.previous))
	first, stop := context.WithCancel(context.Background())
	defer stop()
	firstDone := make(chan error, 1)
	go func() {
		_, err := img.GetLayerContext(first, f.appIDs[0])
		firstDone <- err
	}()
	for p.saves.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := img.GetLayerContext(ctx, f.appIDs[1])
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a read waiting for a stalled one = %v, want its deadline exceeded", err)
	}
	if since := time.Since(start); since > 3*time.Second {
		t.Errorf("a read with a 1s deadline returned after %v", since)
	}
	stop()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Errorf("the stalled read, cancelled = %v, want context.Canceled", err)
	}
}

// testCutLoadSentAgain: moby on the containerd image store answers a load
// whose lease a prune removed before it read the archive whole, and its
// HTTP server then closes the connection with the rest unread: the client
// may see its connection cut, not the answer (the ManyBuildsOneDaemon
// stress does). A client that dials as it needs (pack's) sends the load
// again, and the save succeeds; but not more than twice: a daemon that
// cuts every load fails the save after three, matching ErrLoadDropped
// (it answers: not ErrDaemonUnreachable). Lifecycle's one connection is
// cut for good: the save fails, matching ErrDaemonUnreachable, after that
// one load. Nothing is named by a failed save.
func testCutLoadSentAgain(t *testing.T, cli *client.Client) {
	for _, tc := range []struct {
		name      string
		one       bool
		cuts      int64
		wantLoads int64
		want      error // nil: the save succeeds
	}{
		{"Pooled", false, 1, 2, nil},
		{"PooledEveryLoadCut", false, 100, 3, local.ErrLoadDropped},
		{"OneConnection", true, 1, 1, local.ErrDaemonUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startFaultProxy(t, cli)
			p.dropLoadConns.Store(tc.cuts)
			var c local.DockerClient = p.client
			if tc.one {
				c = oneConnection(t, p.client.DaemonHost())
				// The process cut off cannot remove the records of the
				// names it was to make: a later one sweeps them.
				t.Setenv(local.LedgerDirEnv, t.TempDir())
			}
			name := freshName(t, cli)
			img, err := local.NewImage(name, c)
			must(t, err)
			defer func() { must(t, img.Close()) }()
			l, _ := testhelpers.RandomLayerFile(t, 1<<20)
			must(t, img.AddLayer(l))
			err = img.Save()
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("a save whose load's connection was cut, on a client that dials again: %v", err)
			case tc.want == nil:
				testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, name))
			case !errors.Is(err, tc.want):
				t.Errorf("Save = %v, want %v", err, tc.want)
			case errors.Is(tc.want, local.ErrLoadDropped) && errors.Is(err, local.ErrDaemonUnreachable):
				t.Errorf("Save = %v: the daemon answered, yet it matches ErrDaemonUnreachable", err)
			default:
				t.Logf("%s: %v", tc.name, err)
				if imageID(t, cli, name) != "" {
					t.Errorf("%s was named by a failed save", name)
				}
			}
			if got := p.loads.Load(); got != tc.wantLoads {
				t.Errorf("%d loads, want %d", got, tc.wantLoads)
			}
			assertNoStagingTags(t, cli)
		})
	}
}

// oneConnection is a client of host (a unix socket) as lifecycle's, for a
// test that cuts its connection: one connection, dialled now, returned by
// every dial, Close a no-op (NewLifecycleClient's, without its closing
// check that the connection still serves).
func oneConnection(t *testing.T, host string) *client.Client {
	conn, err := net.Dial("unix", strings.TrimPrefix(host, "unix://"))
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	c, err := client.New(client.WithHost(host), client.WithDialContext(func(context.Context, string, string) (net.Conn, error) {
		return noClose{conn}, nil
	}))
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

type noClose struct{ net.Conn }

func (noClose) Close() error { return nil }
