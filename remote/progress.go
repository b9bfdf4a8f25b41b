package remote

import (
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
)

// reportingLayer reports the bytes of its compressed form as they are
// read (uploaded): one progress item per blob sent, named by the layer's
// diffID, whose total is the bytes that went once they all went (a layer
// compressed as it uploads knows its size only then).
type reportingLayer struct {
	v1.Layer
	item   string
	report func(imgutil.Progress)
}

// reporting wraps the layers of a push that may be uploaded. A layer the
// registry can mount from another repository is left as it is (the writer
// knows it by its type).
func reporting(l v1.Layer, report func(imgutil.Progress)) v1.Layer {
	if _, ok := l.(*remote.MountableLayer); ok || report == nil {
		return l
	}
	d, err := l.DiffID()
	if err != nil {
		return l
	}
	return &reportingLayer{Layer: l, item: d.String(), report: report}
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
	rc    io.ReadCloser
	r     *reportingLayer
	total int64
	n     atomic.Int64
	ended atomic.Bool
}

func (rr *reportingReader) Read(p []byte) (int, error) {
	k, err := rr.rc.Read(p)
	n := rr.n.Add(int64(k))
	switch {
	case err == io.EOF && rr.ended.CompareAndSwap(false, true):
		rr.r.report(imgutil.Progress{Phase: "push", Item: rr.r.item, Complete: n, Total: n})
	case k > 0:
		// Under way: the total while it is ahead, else not known yet.
		total := rr.total
		if total <= n {
			total = 0
		}
		rr.r.report(imgutil.Progress{Phase: "push", Item: rr.r.item, Complete: n, Total: total})
	}
	return k, err
}

func (rr *reportingReader) Close() error { return rr.rc.Close() }
