package ep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultTimeout bounds every collective call whose context has no deadline:
// DeepEP's NUM_CPU_TIMEOUT_SECS.
const DefaultTimeout = 100 * time.Second

// DefaultMaxExperts is Options.MaxExperts when left zero.
const DefaultMaxExperts = 1024

// Options configures a Buffer. Every rank must pass equal options (New
// checks this and fails with ErrConfig on every rank otherwise).
type Options struct {
	// NormalBytes is the region space for normal-mode Dispatch and Combine
	// (the role of upstream's num_nvl_bytes); half receives dispatched rows,
	// half receives combined rows. NormalSizeHint computes it. Zero disables
	// normal mode.
	NormalBytes int
	// MaxExperts bounds numExperts in normal mode (it sizes the notify
	// slots); zero means DefaultMaxExperts.
	MaxExperts int
	// LowLatency, when not nil, enables LowLatencyDispatch and
	// LowLatencyCombine for that fixed shape (upstream's low_latency_mode
	// with num_rdma_bytes from get_low_latency_rdma_size_hint).
	LowLatency *LowLatencyConfig
	// Timeout bounds each collective call whose context has no deadline;
	// zero means DefaultTimeout.
	Timeout time.Duration
}

// LowLatencyConfig is the fixed shape of low-latency mode.
type LowLatencyConfig struct {
	// MaxTokensPerRank M bounds the tokens a rank dispatches per call
	// (num_max_dispatch_tokens_per_rank).
	MaxTokensPerRank int
	// Hidden H is the channels per token.
	Hidden int
	// NumExperts E is the global number of experts, a multiple of R.
	NumExperts int
	// MaxTopK bounds K; zero means 11 (upstream's kNumMaxTopK).
	MaxTopK int
}

// Buffer is one rank's endpoint of an expert-parallel group: the Go
// counterpart of deep_ep.Buffer (V1). It owns a Region registered with the
// Transport and runs DeepEP's normal (Dispatch, DispatchCached, Combine) and
// low-latency (LowLatencyDispatch, LowLatencyCombine) collectives over it.
//
// Calls on one Buffer execute in the order they are issued, like kernels on
// upstream's communication stream; the *Async variants return at once with a
// Pending. All ranks must issue the same collectives in the same order.
// Results documented as aliasing the region stay valid only for the stated
// number of later calls (use Clone to keep them).
type Buffer struct {
	t    Transport
	rank int
	r    int
	reg  *Region
	opts Options
	lay  regionLayout
	id   uint64

	mu       sync.Mutex
	tail     chan struct{}
	closed   bool
	brokenBy error
	inflight sync.WaitGroup

	// sequence counters (touched only by the op running on the stream, or,
	// for the low-latency receive halves, guarded by their own ordering)
	notifySeq   int64
	dataSeq     int64
	dispatchSeq int64
	lldSeq      int64
	llcSeq      int64
	llcNext     int64 // guarded by mu: NextCombineBuffer reads it

	llOut [2]llOutBuf
}

// counter kinds in the counter block: [kind][src rank] int64
const (
	cNotify = iota
	cData
	cLLD
	cLLC
	cLLDFree0
	cLLDFree1
	cLLCFree0
	cLLCFree1
	numCounters
)

const hdrBytes = 256 // fixed header of notify and low-latency status messages

type regionLayout struct {
	counters   int // offset of the counter block
	notify     int // [2][R] notify slots
	notifySlot int
	ll         [2]llHalf
	llcSend    [2]int // zero-copy combine send buffers [El][R·M][H] BF16
	llcSendLen int
	dispatch   int // normal dispatch half
	combine    int // normal combine half
	half       int // bytes per normal half
	total      int
}

type llHalf struct {
	dCounts  int // [R] llSlot: status + per-local-expert counts from each source
	dStaging int // [R][M·K] messages
	cStatus  int // [R] hdrBytes: combine status from each expert rank
	cRecv    int // [M][K] BF16 rows
}

func align64(n int) int { return (n + 63) &^ 63 }

// MaxRegionBytes bounds the region New registers (1 TiB): options whose
// layout needs more, or whose layout arithmetic would overflow an int, fail
// with ErrConfig instead of allocating.
const MaxRegionBytes = 1 << 40

// sat is a saturating non-negative size: any term above MaxRegionBytes, and
// any product or sum that would exceed it, makes the result satBig, so that
// hostile options can never wrap around to a small or negative size.
const satBig = MaxRegionBytes + 1

func satMul(xs ...int) int {
	p := 1
	for _, x := range xs {
		if x < 0 || x > MaxRegionBytes {
			return satBig
		}
		if x != 0 && p > satBig/x {
			return satBig
		}
		p = min(p*x, satBig)
	}
	return p
}

func satAdd(xs ...int) int {
	s := 0
	for _, x := range xs {
		if x < 0 || x > MaxRegionBytes {
			return satBig
		}
		s = min(s+x, satBig)
	}
	return s
}

func satAlign64(n int) int { return min(align64(min(n, satBig)), satBig) }

// llGeometry derives the low-latency message sizes.
type llGeometry struct {
	m, h, e, el, k, ns int
	msg, payload, slot int
}

func newLLGeometry(c *LowLatencyConfig, r int) llGeometry {
	g := llGeometry{m: c.MaxTokensPerRank, h: c.Hidden, e: c.NumExperts, el: c.NumExperts / r, k: c.MaxTopK, ns: NumScales(c.Hidden)}
	g.payload = satAdd(max(satMul(2, g.h), satAdd(g.h, satMul(4, g.ns))), 15) &^ 15
	g.msg = satAdd(g.payload, 16)
	g.slot = satAlign64(satAdd(hdrBytes, satMul(4, g.el)))
	return g
}

// computeLayout places the region's parts; every size is computed with
// saturating arithmetic, so total > MaxRegionBytes reports options too
// large (or overflowing) for any region.
func computeLayout(o *Options, r int) regionLayout {
	var l regionLayout
	off := 0
	l.counters = off
	off = satAdd(off, satAlign64(satMul(numCounters, r, 8)))
	l.notifySlot = satAlign64(satAdd(hdrBytes, satMul(4, satAdd(r, o.MaxExperts))))
	l.notify = off
	off = satAdd(off, satMul(2, r, l.notifySlot))
	if o.LowLatency != nil {
		g := newLLGeometry(o.LowLatency, r)
		for p := range 2 {
			h := &l.ll[p]
			h.dCounts = off
			off = satAdd(off, satMul(r, g.slot))
			h.dStaging = off
			off = satAdd(off, satAlign64(satMul(r, g.m, g.k, g.msg)))
			h.cStatus = off
			off = satAdd(off, satMul(r, hdrBytes))
			h.cRecv = off
			off = satAdd(off, satAlign64(satMul(g.m, g.k, 2, g.h)))
		}
		l.llcSendLen = satMul(g.el, r, g.m, g.h)
		for p := range 2 {
			l.llcSend[p] = off
			off = satAdd(off, satAlign64(satMul(2, l.llcSendLen)))
		}
	}
	l.half = satAlign64(max(o.NormalBytes, 0) / 2)
	l.dispatch = off
	off = satAdd(off, l.half)
	l.combine = off
	off = satAdd(off, l.half)
	l.total = off
	return l
}

func (b *Buffer) counterOff(kind, src int) int { return b.lay.counters + (kind*b.r+src)*8 }

// New creates this rank's Buffer on t: it validates opts, registers the
// region (the sum of the normal and low-latency needs), checks that every
// rank passed equal options and waits for all ranks. It is a collective.
// Errors: ErrConfig (the message names the option), or the transport's
// error.
//
// Upstream: deep_ep.Buffer.__init__ (buffer.py), Buffer::sync (deep_ep.cpp).
func New(ctx context.Context, t Transport, opts Options) (*Buffer, error) {
	if t == nil {
		return nil, errorf(ErrConfig, "transport is nil")
	}
	r := t.Size()
	if opts.MaxExperts == 0 {
		opts.MaxExperts = DefaultMaxExperts
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	var verr error
	switch {
	case opts.NormalBytes < 0:
		verr = errorf(ErrConfig, "Options.NormalBytes = %d is negative", opts.NormalBytes)
	case opts.MaxExperts < 0:
		verr = errorf(ErrConfig, "Options.MaxExperts = %d is negative", opts.MaxExperts)
	case opts.Timeout < 0:
		verr = errorf(ErrConfig, "Options.Timeout = %v is negative", opts.Timeout)
	}
	if ll := opts.LowLatency; ll != nil && verr == nil {
		c := *ll
		if c.MaxTopK == 0 {
			c.MaxTopK = 11
		}
		opts.LowLatency = &c
		switch {
		case c.MaxTokensPerRank <= 0:
			verr = errorf(ErrConfig, "LowLatency.MaxTokensPerRank = %d, want > 0", c.MaxTokensPerRank)
		case c.Hidden <= 0:
			verr = errorf(ErrConfig, "LowLatency.Hidden = %d, want > 0", c.Hidden)
		case c.NumExperts <= 0 || c.NumExperts%r != 0:
			verr = errorf(ErrConfig, "LowLatency.NumExperts = %d, want a positive multiple of the rank count %d", c.NumExperts, r)
		case c.MaxTopK < 0 || c.MaxTopK > 64:
			verr = errorf(ErrConfig, "LowLatency.MaxTopK = %d outside [1, 64]", c.MaxTopK)
		}
	}
	if verr == nil {
		if tot := computeLayout(&opts, r).total; tot > MaxRegionBytes {
			verr = errorf(ErrConfig, "Options need a region of more than MaxRegionBytes (%d bytes): NormalBytes = %d, MaxExperts = %d, LowLatency = %+v", MaxRegionBytes, opts.NormalBytes, opts.MaxExperts, opts.LowLatency)
		}
	}
	// Agree on options (and on validity) before registering.
	mine := encodeOptions(&opts, verr)
	all, err := t.AllGather(ctx, mine)
	if err != nil {
		return nil, err
	}
	if verr != nil {
		return nil, verr
	}
	for i, o := range all {
		if string(o) != string(mine) {
			if len(o) > 0 && o[0] != 0 {
				return nil, &PeerError{Rank: i, Msg: "invalid Options", err: ErrConfig}
			}
			return nil, &PeerError{Rank: i, Msg: fmt.Sprintf("Options differ from rank %d's", t.Rank()), err: ErrConfig}
		}
	}
	b := &Buffer{t: t, rank: t.Rank(), r: r, opts: opts, id: rand.Uint64()}
	b.lay = computeLayout(&opts, r)
	reg, err := t.Register(ctx, b.lay.total)
	if err != nil {
		return nil, err
	}
	b.reg = reg
	return b, nil
}

func encodeOptions(o *Options, verr error) []byte {
	p := make([]byte, 1, 64)
	if verr != nil {
		p[0] = 1
	}
	p = binary.LittleEndian.AppendUint64(p, uint64(o.NormalBytes))
	p = binary.LittleEndian.AppendUint64(p, uint64(o.MaxExperts))
	if c := o.LowLatency; c != nil {
		for _, v := range []int{c.MaxTokensPerRank, c.Hidden, c.NumExperts, c.MaxTopK} {
			p = binary.LittleEndian.AppendUint64(p, uint64(v))
		}
	}
	return p
}

// Rank returns this Buffer's rank; NumRanks the group size R.
func (b *Buffer) Rank() int { return b.rank }

// NumRanks returns the group size R.
func (b *Buffer) NumRanks() int { return b.r }

// RegionBytes returns the size of the registered region in bytes.
func (b *Buffer) RegionBytes() int { return b.reg.Len() }

// Layout computes the dispatch layout of topk (N = len(topk.Idx)/topk.K
// tokens) for numExperts experts over this Buffer's ranks. It is local (no
// communication). See ComputeLayout.
//
// Upstream: deep_ep.Buffer.get_dispatch_layout.
func (b *Buffer) Layout(topk TopK, numExperts int) (*Layout, error) {
	if topk.K <= 0 {
		return nil, errorf(ErrShape, "topk.K = %d, want > 0", topk.K)
	}
	return ComputeLayout(topk, len(topk.Idx)/topk.K, b.r, numExperts)
}

// Close waits for the calls in flight (receive hooks included) and makes
// later calls and hooks fail with ErrClosed. It frees the low-latency result
// buffers, so low-latency results must not be used afterwards. It does not
// close the Transport.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.inflight.Wait()
	for i := range b.llOut {
		b.llOut[i].blk.Free()
	}
	return nil
}

// enter registers a receive hook as in flight unless the Buffer is closed.
func (b *Buffer) enter() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.inflight.Add(1)
	return nil
}

// enqueue reserves the next slot of the Buffer's stream.
func (b *Buffer) enqueue() (prev, done chan struct{}, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, ErrClosed
	}
	prev = b.tail
	done = make(chan struct{})
	b.tail = done
	b.inflight.Add(1)
	return prev, done, nil
}

func (b *Buffer) ctxTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.opts.Timeout)
}

// runOp runs fn as the next operation of the stream.
func (b *Buffer) runOp(ctx context.Context, fn func(context.Context) error) error {
	prev, done, err := b.enqueue()
	if err != nil {
		return err
	}
	defer b.inflight.Done()
	defer close(done)
	if prev != nil {
		<-prev
	}
	if err := b.broken(); err != nil {
		return err
	}
	ctx, cancel := b.ctxTimeout(ctx)
	defer cancel()
	return fn(ctx)
}

// Pending is the result of an asynchronous call, the counterpart of
// upstream's EventOverlap: Wait blocks until the call has finished.
type Pending[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// Wait returns the call's result once it has finished, or ctx's error if
// ctx ends first (the call itself goes on under the context it was issued
// with).
func (p *Pending[T]) Wait(ctx context.Context) (T, error) {
	select {
	case <-p.done:
		return p.val, p.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Done is closed when the call has finished.
func (p *Pending[T]) Done() <-chan struct{} { return p.done }

func goOp[T any](b *Buffer, ctx context.Context, fn func(context.Context) (T, error)) *Pending[T] {
	p := &Pending[T]{done: make(chan struct{})}
	prev, done, err := b.enqueue()
	if err != nil {
		p.err = err
		close(p.done)
		return p
	}
	go func() {
		defer b.inflight.Done()
		defer close(p.done)
		defer close(done)
		if prev != nil {
			<-prev
		}
		if err := b.broken(); err != nil {
			p.err = err
			return
		}
		ctx, cancel := b.ctxTimeout(ctx)
		defer cancel()
		p.val, p.err = fn(ctx)
	}()
	return p
}

func (b *Buffer) broken() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.brokenBy != nil {
		return fmt.Errorf("%w: %w", ErrBroken, b.brokenBy)
	}
	return nil
}

// fail marks the Buffer broken by err (a failure in the middle of a
// collective leaves the ranks' sequence counters out of step) and returns err.
func (b *Buffer) fail(err error) error {
	if err == nil {
		return nil
	}
	b.mu.Lock()
	if b.brokenBy == nil {
		b.brokenBy = err
	}
	b.mu.Unlock()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: rank %d timed out waiting for peers: %w", ErrTransport, b.rank, err)
	}
	return err
}

// header is the fixed prefix of a notify or status message.
type header struct {
	op, code, kind, hidden, k, experts, n, flags, align, worst, numRecv uint32
	handle                                                              uint64
	msg                                                                 string
}

const (
	flagTopK = 1 << iota
	flagWeights
	flagFP8
	flagRoundScale
	flagUE8M0
	flagZeroCopy
)

func (h *header) encode(p []byte) {
	le := binary.LittleEndian
	for i, v := range []uint32{h.op, h.code, h.kind, h.hidden, h.k, h.experts, h.n, h.flags, h.align, h.worst, h.numRecv} {
		le.PutUint32(p[4*i:], v)
	}
	le.PutUint64(p[48:], h.handle)
	m := h.msg
	if len(m) > hdrBytes-64-2 {
		m = m[:hdrBytes-64-2]
	}
	le.PutUint16(p[62:], uint16(len(m)))
	copy(p[64:hdrBytes], m)
}

func decodeHeader(p []byte) header {
	le := binary.LittleEndian
	var h header
	for i, v := range []*uint32{&h.op, &h.code, &h.kind, &h.hidden, &h.k, &h.experts, &h.n, &h.flags, &h.align, &h.worst, &h.numRecv} {
		*v = le.Uint32(p[4*i:])
	}
	h.handle = le.Uint64(p[48:])
	n := int(le.Uint16(p[62:]))
	if n > hdrBytes-64 {
		n = hdrBytes - 64
	}
	h.msg = string(p[64 : 64+n])
	return h
}

func statusHeader(op uint32, err error) header {
	h := header{op: op, code: errCode(err)}
	if err != nil {
		h.msg = err.Error()
	}
	return h
}

// peerErr returns the error of the lowest rank whose header carries one.
func peerErr(me int, myErr error, hs []header) error {
	for i, h := range hs {
		if h.code != codeOK {
			if i == me && myErr != nil {
				return myErr
			}
			return &PeerError{Rank: i, Msg: h.msg, err: codeErr(h.code)}
		}
	}
	return nil
}
