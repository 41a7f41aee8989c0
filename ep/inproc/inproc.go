package inproc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fireflyer-go/fireflyer/ep"
)

type world struct {
	n       int
	regions []*ep.Region

	mu     sync.Mutex
	count  int
	gen    chan struct{}
	slots  [2][][]byte
	closed int
}

// Transport is one rank of an in-process group; it implements ep.Transport.
type Transport struct {
	w      *world
	rank   int
	mu     sync.Mutex
	closed bool
	agSeq  int
}

// MaxRanks bounds the ranks of one in-process group.
const MaxRanks = 1 << 16

// New returns the n transports of a new in-process group, indexed by rank.
// It fails with ep.ErrConfig if n is outside 1..MaxRanks.
func New(n int) ([]*Transport, error) {
	if n < 1 || n > MaxRanks {
		return nil, fmt.Errorf("%w: inproc.New: ranks = %d, want 1..%d", ep.ErrConfig, n, MaxRanks)
	}
	w := &world{n: n, regions: make([]*ep.Region, n), gen: make(chan struct{})}
	w.slots[0] = make([][]byte, n)
	w.slots[1] = make([][]byte, n)
	ts := make([]*Transport, n)
	for i := range ts {
		ts[i] = &Transport{w: w, rank: i}
	}
	return ts, nil
}

// Rank returns this rank's index.
func (t *Transport) Rank() int { return t.rank }

// Size returns the number of ranks.
func (t *Transport) Size() int { return t.w.n }

func (t *Transport) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("%w: inproc rank %d", ep.ErrClosed, t.rank)
	}
	return nil
}

// Register allocates this rank's region and waits for every rank to do so.
func (t *Transport) Register(ctx context.Context, size int) (*ep.Region, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if size < 0 || size%8 != 0 {
		return nil, fmt.Errorf("%w: inproc Register: size %d is not a non-negative multiple of 8", ep.ErrConfig, size)
	}
	if t.w.regions[t.rank] != nil {
		return nil, fmt.Errorf("%w: inproc Register: rank %d already registered", ep.ErrConfig, t.rank)
	}
	r := ep.NewRegion(size)
	t.w.regions[t.rank] = r
	if err := t.Barrier(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (t *Transport) peer(dst int) (*ep.Region, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if dst < 0 || dst >= t.w.n {
		return nil, fmt.Errorf("%w: destination rank %d outside [0, %d)", ep.ErrRange, dst, t.w.n)
	}
	r := t.w.regions[dst]
	if r == nil {
		return nil, fmt.Errorf("%w: rank %d has no registered region", ep.ErrConfig, dst)
	}
	return r, nil
}

// Put copies bufs into rank dst's region at off, after a bounds check.
func (t *Transport) Put(ctx context.Context, dst, off int, bufs ...[]byte) error {
	r, err := t.peer(dst)
	if err != nil {
		return err
	}
	return r.Write(off, bufs...)
}

// Signal adds delta to the counter at off in rank dst's region.
func (t *Transport) Signal(ctx context.Context, dst, off int, delta int64) error {
	r, err := t.peer(dst)
	if err != nil {
		return err
	}
	return r.Add(off, delta)
}

// Barrier returns when all ranks have entered it, or with ctx's error.
func (t *Transport) Barrier(ctx context.Context) error {
	if err := t.check(); err != nil {
		return err
	}
	w := t.w
	w.mu.Lock()
	w.count++
	if w.count == w.n {
		w.count = 0
		close(w.gen)
		w.gen = make(chan struct{})
		w.mu.Unlock()
		return nil
	}
	ch := w.gen
	w.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: inproc barrier on rank %d: %w", ep.ErrTransport, t.rank, ctx.Err())
	}
}

// AllGather returns every rank's p (copied), indexed by rank.
func (t *Transport) AllGather(ctx context.Context, p []byte) ([][]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	w := t.w
	slot := t.agSeq % 2
	t.agSeq++
	w.mu.Lock()
	w.slots[slot][t.rank] = append([]byte(nil), p...)
	w.mu.Unlock()
	if err := t.Barrier(ctx); err != nil {
		return nil, err
	}
	out := make([][]byte, w.n)
	w.mu.Lock()
	for i := range out {
		out[i] = append([]byte(nil), w.slots[slot][i]...)
	}
	w.mu.Unlock()
	// A rank may start the next AllGather (the other slot) at once; the one
	// after that reuses this slot only after a barrier every rank passes
	// after reading, which the next AllGather's barrier provides.
	return out, nil
}

// Close marks this rank closed; its pending waits fail with ep.ErrClosed.
// When every rank of the group has closed, the regions are freed: results
// that alias a region must not be used afterwards.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if r := t.w.regions[t.rank]; r != nil {
		r.Abort(fmt.Errorf("%w: inproc rank %d", ep.ErrClosed, t.rank))
	}
	// Peers may still put into this region until they close too: free the
	// regions when the last rank closes.
	w := t.w
	w.mu.Lock()
	w.closed++
	last := w.closed == w.n
	w.mu.Unlock()
	if last {
		for _, r := range w.regions {
			if r != nil {
				r.Free()
			}
		}
	}
	return nil
}

// Run starts ranks goroutines, one per rank of a new in-process group, runs
// fn on each with that rank's transport, closes the transports and returns
// the ranks' errors joined (each prefixed by its rank). When a rank fails,
// the context passed to the others is cancelled so that none waits forever.
// A nil fn is ep.ErrConfig.
func Run(ctx context.Context, ranks int, fn func(ctx context.Context, t ep.Transport) error) error {
	if fn == nil {
		return fmt.Errorf("%w: inproc.Run: nil fn", ep.ErrConfig)
	}
	ts, err := New(ranks)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, ranks)
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.Close()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("rank %d: panic: %v", i, p)
					cancel()
				}
			}()
			if err := fn(ctx, t); err != nil {
				errs[i] = fmt.Errorf("rank %d: %w", i, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RunBuffers is Run with an ep.Buffer created on every rank from opts: the
// shortest way to drive R in-process ranks, as the project demo does.
// A nil fn is ep.ErrConfig.
func RunBuffers(ctx context.Context, ranks int, opts ep.Options, fn func(ctx context.Context, b *ep.Buffer) error) error {
	if fn == nil {
		return fmt.Errorf("%w: inproc.RunBuffers: nil fn", ep.ErrConfig)
	}
	return Run(ctx, ranks, func(ctx context.Context, t ep.Transport) error {
		b, err := ep.New(ctx, t, opts)
		if err != nil {
			return err
		}
		defer b.Close()
		return fn(ctx, b)
	})
}

func init() {
	ep.RegisterTransport("inproc", "ranks as goroutines in this process", nil, func(cfg ep.TransportConfig) (ep.Opener, error) {
		if cfg.WorldSize < 1 || cfg.WorldSize > MaxRanks {
			return nil, fmt.Errorf("%w: inproc: WorldSize = %d, want 1..%d", ep.ErrConfig, cfg.WorldSize, MaxRanks)
		}
		return func(context.Context) ([]ep.Transport, error) {
			ts, err := New(cfg.WorldSize)
			if err != nil {
				return nil, err
			}
			out := make([]ep.Transport, len(ts))
			for i, t := range ts {
				out[i] = t
			}
			return out, nil
		}, nil
	})
}
