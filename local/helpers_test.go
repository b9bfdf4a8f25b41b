package local_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

func TestMain(m *testing.M) {
	// Temp files of ours go to a directory of this run, checked at the end:
	// other processes' entries in the shared temp dir are not ours.
	tmp, err := os.MkdirTemp("", "local-tests-*")
	if err != nil {
		panic(err)
	}
	os.Setenv("TMPDIR", tmp)
	os.Setenv(local.ManifestCacheEnv, filepath.Join(tmp, "manifest-cache"))
	// One ledger of short-lived names for the tests and the processes they
	// start (killed helpers leave their records there): a helper keeps the
	// one it was given.
	if os.Getenv(local.LedgerDirEnv) == "" {
		os.Setenv(local.LedgerDirEnv, filepath.Join(tmp, "names"))
	}
	code := m.Run()
	left, _ := filepath.Glob(filepath.Join(tmp, "imgutil-*"))
	// Every name made was removed, and so its record (killed helpers'
	// records are swept by the tests that kill them).
	records, _ := filepath.Glob(filepath.Join(tmp, "names", "*", "*"))
	left = append(left, records...)
	for _, p := range left {
		fmt.Fprintf(os.Stderr, "temp entry left behind by the tests: %s\n", p)
		code = 1
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countingClient counts what goes to the daemon: bytes of load requests
// and ImageSave calls; failSave makes ImageSave fail.
type countingClient struct {
	*client.Client
	loadBytes atomic.Int64
	readBytes atomic.Int64
	loadNanos atomic.Int64 // time spent in loads, from the request to the answer's close
	loads     atomic.Int64
	saves     atomic.Int64
	failSave  error

	// mu guards saved: the names ImageSave was asked for.
	mu    sync.Mutex
	saved []string
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingClient) ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	c.loads.Add(1)
	start := time.Now()
	res, err := c.Client.ImageLoad(ctx, countingReader{input, &c.loadBytes}, opts...)
	if err != nil {
		c.loadNanos.Add(int64(time.Since(start)))
		return res, err
	}
	return timedBody{ReadCloser: res, start: start, total: &c.loadNanos}, nil
}

// timedBody adds the time from start to its Close to total.
type timedBody struct {
	io.ReadCloser
	start time.Time
	total *atomic.Int64
}

func (b timedBody) Close() error {
	b.total.Add(int64(time.Since(b.start)))
	return b.ReadCloser.Close()
}

func (c *countingClient) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	c.saves.Add(1)
	c.mu.Lock()
	c.saved = append(c.saved, images...)
	c.mu.Unlock()
	if c.failSave != nil {
		return nil, c.failSave
	}
	rc, err := c.Client.ImageSave(ctx, images, opts...)
	if err != nil {
		return rc, err
	}
	return countingBody{ReadCloser: rc, n: &c.readBytes}, nil
}

func containerdStore(t *testing.T, cli *client.Client) bool { return onContainerdStore(t, cli) }

// fixture puts a busybox base and a previous image (base + two app layers
// saved by the library) into the daemon.
type fixture struct {
	cli            *client.Client
	base, previous string
	baseIDs        []string
	appIDs         []string
}

func newFixture(t *testing.T, cli *client.Client) fixture {
	f := fixture{cli: cli, base: freshName(t, cli), previous: freshName(t, cli)}
	baseImg := testhelpers.BusyboxImage(t, imgutil.DockerTypes)
	testhelpers.DockerPut(t, cli, f.base, baseImg)
	f.baseIDs = testhelpers.DiffIDs(t, baseImg)
	prev := newImage(t, cli, f.previous, local.FromBaseImage(f.base), local.WithHistory())
	for i := range 2 {
		p, id := testhelpers.RandomLayerFile(t, 256<<10)
		must(t, prev.AddLayerWithDiffIDAndHistory(p, id, v1.History{CreatedBy: fmt.Sprintf("app %d", i)}))
		f.appIDs = append(f.appIDs, id)
	}
	must(t, prev.Save())
	return f
}
