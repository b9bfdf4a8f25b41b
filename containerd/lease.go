package containerd

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"

	"github.com/imgbridge/imgutil/internal/owner"
)

// leaseTerm is how long each lease of a save lasts. It bounds how long the
// blobs of a save killed half-way are kept from containerd's garbage
// collection when no later save on the machine removes its leases first
// (see sweepLeases). A save may last longer: containerd cannot extend a
// lease, so a save takes a new one every third of the term (see
// saveLease). A variable for the tests.
var leaseTerm = owner.FileLimit

// leasePrefix starts the ID of a save's lease; the owner's token follows.
const leasePrefix = "imgutil-save-"

// saveLease keeps what a save writes from containerd's garbage collection
// for as long as the save lasts, with leases of a fixed term: a third of
// the way through each term the save takes a new lease, holding all that
// its leases hold (blobs, ingests, snapshots), and the requests it starts
// from then on go under the new one.
//
// A request is tied to the lease it started under (a content writer's
// stream commits under the lease it was opened with): everything a
// request adds to a lease is handed on if the request ends within a
// third of the term, 8 hours, which no single blob write or layer apply
// comes near.
type saveLease struct {
	ls   leases.Manager
	base context.Context // the save's, namespaced
	term time.Duration

	mu    sync.Mutex
	chain []heldLease // not yet past their term, oldest first

	current atomic.Pointer[context.Context] // base under the newest lease
	stop    chan struct{}
	stopped chan struct{}
}

// takeLease starts the leases of a save made with ctx (namespaced) and
// returns the context its requests use, and the function that ends them.
// A ctx that carries a lease already (the caller's) is used as it is.
func takeLease(ctx context.Context, ls leases.Manager) (context.Context, func(), error) {
	if _, ok := leases.FromContext(ctx); ok {
		return ctx, func() {}, nil
	}
	s := &saveLease{ls: ls, base: ctx, term: leaseTerm, stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := s.renew(); err != nil {
		return nil, nil, err
	}
	go s.keep()
	return leasedContext{Context: ctx, l: s}, s.end, nil
}

// heldLease is one lease of a save, and when the save took it (by this
// machine's clock: containerd's may differ).
type heldLease struct {
	leases.Lease
	taken time.Time
}

// renew takes a new lease holding what the save's leases hold, and makes
// it the one new requests go under.
func (s *saveLease) renew() error {
	now := time.Now()
	l, err := s.ls.Create(s.base, leases.WithID(leasePrefix+owner.Token()), leases.WithExpiration(s.term))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every lease not yet past its term is listed, not only the newest: a
	// request that began under an older one may have added to it since
	// the last renewal listed it.
	var live, past []heldLease
	for _, old := range s.chain {
		if now.Sub(old.taken) >= s.term {
			past = append(past, old)
			continue
		}
		live = append(live, old)
		resources, err := s.ls.ListResources(s.base, old.Lease)
		if err != nil && !cerrdefs.IsNotFound(err) {
			// Tried again later, the chain as it was.
			_ = s.ls.Delete(context.WithoutCancel(s.base), l)
			return err
		}
		for _, r := range resources {
			if err := s.ls.AddResource(s.base, l, r); err != nil {
				_ = s.ls.Delete(context.WithoutCancel(s.base), l)
				return err
			}
		}
	}
	for _, old := range past {
		_ = s.ls.Delete(context.WithoutCancel(s.base), old.Lease)
	}
	s.chain = append(live, heldLease{Lease: l, taken: now})
	ctx := leases.WithLease(s.base, l.ID)
	s.current.Store(&ctx)
	return nil
}

// keep renews the lease every third of its term until the save ends. A
// renewal that fails is tried again a minute (a tenth of the term at
// most) later.
func (s *saveLease) keep() {
	defer close(s.stopped)
	every := s.term / 3
	retry := min(time.Minute, s.term/10)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.base.Done():
			return
		case <-t.C:
		}
		if err := s.renew(); err != nil {
			t.Reset(retry)
			continue
		}
		t.Reset(every)
	}
}

// end stops the renewals and removes the save's leases (what they held is
// then the records' to keep, or garbage).
func (s *saveLease) end() {
	close(s.stop)
	<-s.stopped
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.chain {
		_ = s.ls.Delete(context.WithoutCancel(s.base), l.Lease)
	}
	s.chain = nil
}

// leasedContext is the save's context, under its newest lease: a request
// started with it (or a context made from it) reads the lease's ID, and
// the gRPC header that carries it, when it starts. Cancellation and
// deadline are the save's. A context that adds values of its own to the
// gRPC metadata (a namespace, a lease) copies the header as it is then:
// none is kept beyond one request.
type leasedContext struct {
	context.Context
	l *saveLease
}

func (c leasedContext) Value(key any) any { return (*c.l.current.Load()).Value(key) }
