package remote

import (
	"errors"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
)

// serialized is report called by one goroutine at a time (a push uploads
// layers in parallel); nil for nil.
func serialized(report func(imgutil.Progress)) func(imgutil.Progress) {
	if report == nil {
		return nil
	}
	var mu sync.Mutex
	return func(p imgutil.Progress) {
		mu.Lock()
		defer mu.Unlock()
		report(p)
	}
}

// reporting wraps a layer of a push so that the bytes of its compressed
// form report as they are read (uploaded): one progress item per blob
// sent, named by the layer's diffID, at most once per MiB and once at its
// end, whose total is the bytes that went (a layer compressed as it
// uploads knows its size only then). The layer describes itself as
// before (its descriptor's URLs and annotations kept: the manifest is the
// same). A layer the registry can mount from another repository is left as
// it is (the writer knows it by its type).
func reporting(l v1.Layer, report func(imgutil.Progress)) v1.Layer {
	if _, ok := l.(*remote.MountableLayer); ok || report == nil {
		return l
	}
	d, err := l.DiffID()
	if err != nil {
		return l
	}
	r := &reportingLayer{Layer: l, item: d.String(), report: report}
	if _, ok := l.(describable); ok {
		return &describedReportingLayer{r}
	}
	return r
}

type describable interface {
	Descriptor() (*v1.Descriptor, error)
}

type reportingLayer struct {
	v1.Layer
	item   string
	report func(imgutil.Progress)
}

// describedReportingLayer is a reportingLayer whose layer has a
// descriptor of its own.
type describedReportingLayer struct{ *reportingLayer }

func (d *describedReportingLayer) Descriptor() (*v1.Descriptor, error) {
	return d.Layer.(describable).Descriptor()
}

func (r *reportingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := r.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	total, _ := r.Size() // 0 until a lazy layer was read once
	return &reportingReader{rc: rc, r: r, total: total}, nil
}

type reportingReader struct {
	rc          io.ReadCloser
	r           *reportingLayer
	total       int64
	n, reported int64
	ended       bool
}

func (rr *reportingReader) Read(p []byte) (int, error) {
	k, err := rr.rc.Read(p)
	rr.n += int64(k)
	switch {
	case errors.Is(err, io.EOF) && !rr.ended:
		rr.ended = true
		rr.r.report(imgutil.Progress{Phase: "push", Item: rr.r.item, Complete: rr.n, Total: rr.n})
	case rr.n-rr.reported >= 1<<20:
		rr.reported = rr.n
		// Under way: the total while it is ahead, else not known yet.
		total := rr.total
		if total <= rr.n {
			total = 0
		}
		rr.r.report(imgutil.Progress{Phase: "push", Item: rr.r.item, Complete: rr.n, Total: total})
	}
	return k, err
}

func (rr *reportingReader) Close() error { return rr.rc.Close() }
