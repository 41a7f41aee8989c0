package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Errors of this package. Failures of the underlying ep.Transport (a peer
// that died, a closed transport) keep their own errors (ep.ErrTransport,
// ep.ErrClosed) and are wrapped as they are.
var (
	// ErrParam is wrapped for bad arguments: a peer outside the group, a
	// tensor that is nil, not contiguous, device-only or of an invalid
	// dtype, or bad Options. It wraps pipeline.ErrParam.
	ErrParam = fmt.Errorf("%w (p2p)", pipeline.ErrParam)
	// ErrProtocol is wrapped when a peer's message stream does not parse
	// (bad magic, dtype, rank or size); the stream from that peer is then
	// unusable. It wraps ep.ErrTransport.
	ErrProtocol = fmt.Errorf("%w: pipeline p2p protocol violation", ep.ErrTransport)
)

// Defaults and bounds of Options.
const (
	// DefaultRing is the default per-sender ring size in bytes.
	DefaultRing = 4 << 20
	// DefaultTimeout bounds every Recv whose context has no earlier
	// deadline.
	DefaultTimeout = 5 * time.Minute
	// MaxDims is the largest tensor rank a message can carry.
	MaxDims = 8
	// MaxMessage is the largest payload of one message, 1 GiB; larger
	// tensors are refused by Send and by the receiver.
	MaxMessage = 1 << 30
	// MaxRegion bounds the region New registers (one ring per rank of the
	// group, 64 GiB of address space; pages never written cost no memory).
	MaxRegion = 1 << 36
	// MaxRecycled bounds the bytes of buffers Recycle keeps for reuse.
	MaxRecycled = 64 << 20
)

// Options configures New.
type Options struct {
	// Ring is the bytes of this rank's region given to each sender (its
	// ring buffer): a message larger than the ring streams through it in
	// pieces. Zero means DefaultRing; it is rounded up to a multiple of 64
	// and must be at least 256. Every rank of a group must use the same
	// value, and group size × Ring must not exceed MaxRegion.
	Ring int
	// Timeout bounds every Recv (zero: DefaultTimeout; negative is an
	// error): the receive fails with context.DeadlineExceeded when the
	// message has not arrived by then or by the context's own deadline,
	// whichever comes first.
	Timeout time.Duration
	// NoMessages makes New use the ring path even when the ep transport is
	// an ep.Messenger (for comparisons and tests of the ring path; the
	// message path is faster: see Transport).
	NoMessages bool
}

// Transport is one rank's pipeline.Transport[*tensor.Tensor] over an
// ep.Transport: activations and gradients travel as tensors with their
// dtype and shape, in order per peer, each matched on arrival to the
// receive that names its tag. It is safe for concurrent use. Unlike
// pipeline.ChanNetwork it carries any number of steps: a tag sent again
// (the next step's message) queues behind the first one.
type Transport struct {
	tr      ep.Transport
	msg     ep.Messenger // the message path, nil on the ring path
	reg     *ep.Region
	rank    int
	world   int
	ring    int
	hdr     int
	timeout time.Duration

	sendMu []sync.Mutex // per destination
	sent   []int64      // bytes sent to each destination (under sendMu)

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when stash or errs change
	stash   []map[pipeline.Tag][]*tensor.Tensor
	errs    []error // per sender: why its stream stopped
	closed  bool

	poolMu    sync.Mutex
	pool      map[int][][]byte // recycled receive buffers by length
	poolBytes int

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// wire layout of a message header: little-endian uint64 words
// magic, phase, kind, micro, dtype, ndim, payload bytes, then ndim dims.
const (
	magic     = 0x3150_5046_4650_4646 // "FFPFPP1" tagged
	fixedHdr  = 7 * 8
	maxHeader = fixedHdr + MaxDims*8
	maxPhase  = 1 << 20 // bounds of a tag's fields on the wire
	maxMicro  = 1 << 40
)

// New builds a pipeline transport on tr, which it owns from now on (Close
// closes it). It registers tr's region, a collective: every rank of tr's
// group must call New with the same Options. It starts one reader
// goroutine per peer that drains that peer's ring into a local queue, so a
// Send completes as soon as the bytes reach the peer's region, whether or
// not the peer has posted the receive.
func New(ctx context.Context, tr ep.Transport, opts Options) (*Transport, error) {
	if tr == nil {
		return nil, fmt.Errorf("%w: nil ep.Transport", ErrParam)
	}
	ring := opts.Ring
	if ring == 0 {
		ring = DefaultRing
	}
	if ring < 256 || ring > 1<<30 {
		return nil, fmt.Errorf("%w: Options.Ring = %d, want 256…%d bytes", ErrParam, opts.Ring, 1<<30)
	}
	ring = (ring + 63) / 64 * 64
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		return nil, fmt.Errorf("%w: Options.Timeout = %v is negative", ErrParam, opts.Timeout)
	}
	world, rank := tr.Size(), tr.Rank()
	if world < 1 || rank < 0 || rank >= world {
		return nil, fmt.Errorf("%w: ep transport reports rank %d of %d", ErrParam, rank, world)
	}
	if int64(world)*int64(ring) > MaxRegion {
		return nil, fmt.Errorf("%w: %d ranks × Options.Ring %d bytes exceed %d bytes of region; lower Options.Ring", ErrParam, world, ring, int64(MaxRegion))
	}
	t := &Transport{
		tr: tr, rank: rank, world: world, ring: ring, timeout: timeout,
		sendMu: make([]sync.Mutex, world), sent: make([]int64, world),
		changed: make(chan struct{}),
		stash:   make([]map[pipeline.Tag][]*tensor.Tensor, world),
		errs:    make([]error, world),
		pool:    map[int][][]byte{},
	}
	for p := range t.stash {
		t.stash[p] = map[pipeline.Tag][]*tensor.Tensor{}
	}
	if m, ok := tr.(ep.Messenger); ok && !opts.NoMessages {
		// The message path: the reader goroutines of the ep transport read
		// each payload straight into the tensor Recv will return. The
		// barrier orders every rank's OnMsg before any rank's first Send.
		if err := m.OnMsg(msgSink{t}); err != nil {
			return nil, fmt.Errorf("pipeline/p2p: rank %d: %w", rank, err)
		}
		if err := tr.Barrier(ctx); err != nil {
			return nil, fmt.Errorf("pipeline/p2p: rank %d: barrier: %w", rank, err)
		}
		t.msg = m
		t.cancel = func() {}
		return t, nil
	}
	t.hdr = (16*world + 63) / 64 * 64
	reg, err := tr.Register(ctx, t.hdr+world*ring)
	if err != nil {
		return nil, fmt.Errorf("pipeline/p2p: rank %d: register: %w", rank, err)
	}
	t.reg = reg
	rctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	for p := 0; p < world; p++ {
		if p == rank {
			continue
		}
		t.wg.Add(1)
		go t.drain(rctx, p)
	}
	return t, nil
}

// Rank returns this rank's index in the group.
func (t *Transport) Rank() int { return t.rank }

// Size returns the number of ranks in the group.
func (t *Transport) Size() int { return t.world }

// writtenOff is the counter, in the receiver's region, of bytes sender p
// has written into its ring; creditOff the counter, in the sender's region,
// of bytes receiver p has consumed from it.
func (t *Transport) writtenOff(p int) int { return 8 * p }
func (t *Transport) creditOff(p int) int  { return 8 * (t.world + p) }
func (t *Transport) ringOff(p int) int    { return t.hdr + p*t.ring }

func (t *Transport) peerOK(p int) error {
	if p < 0 || p >= t.world {
		return fmt.Errorf("%w: peer rank %d outside %d ranks", ErrParam, p, t.world)
	}
	return nil
}

// Send implements pipeline.Transport: it streams msg (a contiguous host
// tensor of at most MaxMessage bytes and MaxDims dimensions) to rank to
// under tag. It returns once the bytes are in the peer's region (or its
// ep transport's send buffer), so the caller may reuse msg; it waits only
// while the peer's ring for this rank is full, which its reader goroutine
// drains on its own. Sending to this rank itself queues msg locally.
func (t *Transport) Send(ctx context.Context, to int, tag pipeline.Tag, msg *tensor.Tensor) error {
	if err := t.peerOK(to); err != nil {
		return err
	}
	h, err := encodeHeader(tag, msg)
	if err != nil {
		return fmt.Errorf("pipeline/p2p: rank %d send %v to r%d: %w", t.rank, tag, to, err)
	}
	if to == t.rank {
		cp := &tensor.Tensor{DType: msg.DType, Shape: append([]int(nil), msg.Shape...), Strides: tensor.ContiguousStrides(msg.Shape), Data: append([]byte(nil), msg.Data[:payloadLen(msg)]...)}
		t.deliver(to, tag, cp)
		return nil
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	t.sendMu[to].Lock()
	defer t.sendMu[to].Unlock()
	if t.msg != nil {
		if err := t.msg.SendMsg(ctx, to, h, msg.Data[:payloadLen(msg)]); err != nil {
			return fmt.Errorf("pipeline/p2p: rank %d send %v to r%d: %w", t.rank, tag, to, err)
		}
		return nil
	}
	if err := t.write(ctx, to, h, msg.Data[:payloadLen(msg)]); err != nil {
		return fmt.Errorf("pipeline/p2p: rank %d send %v to r%d: %w", t.rank, tag, to, err)
	}
	return nil
}

// write streams h and then b into rank to's ring as one byte stream,
// waiting for credit when the ring is full. Each piece, the header
// together with as much of the payload as fits, is put and then signalled
// once (one writev on the socket transports).
func (t *Transport) write(ctx context.Context, to int, h, b []byte) error {
	var piece [4][]byte
	for len(h)+len(b) > 0 {
		used := t.sent[to] - t.reg.Load(t.creditOff(to))
		if used >= int64(t.ring) {
			// Wait until the receiver has consumed something.
			if _, err := t.reg.Wait(ctx, t.creditOff(to), t.sent[to]-int64(t.ring)+1); err != nil {
				return err
			}
			continue
		}
		free := t.ring - int(used)
		nh := min(len(h), free)
		nb := min(len(b), free-nh)
		n := nh + nb
		pos := int(t.sent[to] % int64(t.ring))
		first := t.ring - pos // room before the ring wraps
		// Split the piece at the wrap: bufs before it go to pos, the rest to
		// the ring's start.
		a, w := piece[:0], piece[2:2]
		for _, s := range [][]byte{h[:nh], b[:nb]} {
			if len(s) == 0 {
				continue
			}
			k := min(len(s), max(first, 0))
			if k > 0 {
				a = append(a, s[:k])
			}
			if k < len(s) {
				w = append(w, s[k:])
			}
			first -= len(s)
		}
		base := t.ringOff(t.rank)
		if len(a) > 0 {
			if err := t.tr.Put(ctx, to, base+pos, a...); err != nil {
				return err
			}
		}
		if len(w) > 0 {
			if err := t.tr.Put(ctx, to, base, w...); err != nil {
				return err
			}
		}
		if err := t.tr.Signal(ctx, to, t.writtenOff(t.rank), int64(n)); err != nil {
			return err
		}
		t.sent[to] += int64(n)
		h, b = h[nh:], b[nb:]
	}
	return nil
}

// Recv implements pipeline.Transport: it returns the next message rank
// from sent under tag, waiting at most Options.Timeout (or ctx's earlier
// deadline). The error wraps context.DeadlineExceeded or ctx's error when
// it times out, ErrParam for a bad peer, and the reader's error (ep.ErrTransport,
// ErrProtocol, ep.ErrClosed) when the peer's stream broke before the
// message came.
func (t *Transport) Recv(ctx context.Context, from int, tag pipeline.Tag) (*tensor.Tensor, error) {
	if err := t.peerOK(from); err != nil {
		return nil, err
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	for {
		t.mu.Lock()
		if q := t.stash[from][tag]; len(q) > 0 {
			m := q[0]
			if len(q) == 1 {
				delete(t.stash[from], tag)
			} else {
				t.stash[from][tag] = q[1:]
			}
			t.mu.Unlock()
			return m, nil
		}
		if err := t.errs[from]; err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("pipeline/p2p: rank %d waiting for %v from r%d: %w", t.rank, tag, from, err)
		}
		if t.closed {
			t.mu.Unlock()
			return nil, fmt.Errorf("pipeline/p2p: rank %d waiting for %v from r%d: %w", t.rank, tag, from, ep.ErrClosed)
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("pipeline/p2p: rank %d waiting for %v from r%d: %w", t.rank, tag, from, context.Cause(ctx))
		}
	}
}

// Recycle hands back the buffer of m, a tensor that Recv returned, so that
// a later message of the same byte size is received into it instead of
// into a new allocation (as upstream DualPipe reuses receive buffers of
// preset shapes, set_p2p_tensor_shapes): in a loop that is done with each
// received tensor before the next one, the receive then allocates nothing.
// The caller must not use m, nor anything sharing its Data, afterwards.
// Recycle keeps at most MaxRecycled bytes and ignores nil tensors, empty
// ones and buffers it would not itself have allocated (Data whose capacity
// differs from its length).
func (t *Transport) Recycle(m *tensor.Tensor) {
	if m == nil || len(m.Data) == 0 || cap(m.Data) != len(m.Data) {
		return
	}
	b := m.Data
	m.Data = nil
	t.poolMu.Lock()
	defer t.poolMu.Unlock()
	if t.poolBytes+len(b) > MaxRecycled {
		return
	}
	t.pool[len(b)] = append(t.pool[len(b)], b)
	t.poolBytes += len(b)
}

// recycled returns a buffer of n bytes from Recycle's pool, or nil.
func (t *Transport) recycled(n int) []byte {
	t.poolMu.Lock()
	defer t.poolMu.Unlock()
	q := t.pool[n]
	if len(q) == 0 {
		return nil
	}
	b := q[len(q)-1]
	q[len(q)-1] = nil
	if len(q) == 1 {
		delete(t.pool, n)
	} else {
		t.pool[n] = q[:len(q)-1]
	}
	t.poolBytes -= n
	return b
}

// Pending returns the number of messages received but not yet taken by
// Recv (what a step should leave at zero).
func (t *Transport) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.stash {
		for _, q := range m {
			n += len(q)
		}
	}
	return n
}

// Close stops the reader goroutines and closes the ep transport. Pending
// and later receives fail with ep.ErrClosed. A rank should close only once
// its peers no longer need its messages: the group's ranks usually meet in
// a Barrier (Transport.Barrier) first.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.broadcastLocked()
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	return t.tr.Close()
}

// Barrier returns when every rank of the group has entered it (the ep
// transport's Barrier).
func (t *Transport) Barrier(ctx context.Context) error { return t.tr.Barrier(ctx) }

func (t *Transport) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.timeout)
}

func (t *Transport) broadcastLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *Transport) deliver(from int, tag pipeline.Tag, m *tensor.Tensor) {
	t.mu.Lock()
	t.stash[from][tag] = append(t.stash[from][tag], m)
	t.broadcastLocked()
	t.mu.Unlock()
}

// drain reads peer p's ring: one message after the other into the stash.
func (t *Transport) drain(ctx context.Context, p int) {
	defer t.wg.Done()
	r := ringReader{t: t, p: p}
	err := func() error {
		var h [maxHeader]byte
		for {
			if err := r.read(ctx, h[:fixedHdr]); err != nil {
				return err
			}
			ndim := binary.LittleEndian.Uint64(h[40:])
			if ndim > MaxDims {
				return fmt.Errorf("%w: from r%d: %d dimensions (at most %d)", ErrProtocol, p, ndim, MaxDims)
			}
			if err := r.read(ctx, h[fixedHdr:fixedHdr+8*ndim]); err != nil {
				return err
			}
			tag, m, size, err := decodeMeta(h[:fixedHdr+8*ndim])
			if err != nil {
				return fmt.Errorf("%w: from r%d: %w", ErrProtocol, p, err)
			}
			if m.Data, err = r.take(ctx, size); err != nil {
				return err
			}
			t.deliver(p, tag, m) // before the credit: the receiver need not wait for it
			if err := r.credit(ctx); err != nil {
				return err
			}
		}
	}()
	t.mu.Lock()
	if t.errs[p] == nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: pipeline p2p rank %d", ep.ErrClosed, t.rank)
		}
		t.errs[p] = err
	}
	t.broadcastLocked()
	t.mu.Unlock()
}

// msgSink receives the ep transport's messages (the message path): the
// header names the tensor, whose payload the transport reads straight into
// a recycled buffer or a new one that is not zeroed first.
type msgSink struct{ t *Transport }

func parseMsgHeader(meta []byte) (pipeline.Tag, *tensor.Tensor, int, error) {
	if len(meta) < fixedHdr {
		return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: header of %d bytes", errHeader, len(meta))
	}
	ndim := binary.LittleEndian.Uint64(meta[40:])
	if ndim > MaxDims || len(meta) != fixedHdr+8*int(ndim) {
		return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: %d dimensions in a header of %d bytes", errHeader, ndim, len(meta))
	}
	return decodeMeta(meta)
}

// MsgBuffer implements ep.MsgHandler: it checks the header and returns
// the n-byte buffer the payload lands in (recycled, or new and not
// zeroed), or an error that breaks the stream from rank from.
func (s msgSink) MsgBuffer(from int, meta []byte, n int) ([]byte, error) {
	_, _, size, err := parseMsgHeader(meta)
	if err != nil {
		return nil, fmt.Errorf("pipeline/p2p: from r%d: %w", from, err)
	}
	if size != n {
		return nil, fmt.Errorf("pipeline/p2p: from r%d: header says %d payload bytes, message has %d", from, size, n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	if b := s.t.recycled(n); b != nil {
		return b, nil
	}
	// Growing a nil slice allocates without zeroing the bytes the
	// transport is about to overwrite.
	return slices.Grow([]byte(nil), n)[:n:n], nil
}

// Msg implements ep.MsgHandler: it queues the received tensor for Recv.
func (s msgSink) Msg(from int, meta, buf []byte) {
	tag, m, _, err := parseMsgHeader(meta)
	if err != nil { // MsgBuffer accepted this header
		s.MsgEnd(from, fmt.Errorf("%w: from r%d: %w", ErrProtocol, from, err))
		return
	}
	m.Data = buf
	s.t.deliver(from, tag, m)
}

// MsgEnd implements ep.MsgHandler: it records why the stream from rank
// from ended (ep.ErrClosed for an orderly close), so that waiting and
// later receives from it fail at once.
func (s msgSink) MsgEnd(from int, err error) {
	t := s.t
	if err == nil {
		err = fmt.Errorf("%w: peer rank %d closed its pipeline transport", ep.ErrClosed, from)
	}
	t.mu.Lock()
	if from >= 0 && from < t.world && t.errs[from] == nil {
		t.errs[from] = err
	}
	t.broadcastLocked()
	t.mu.Unlock()
}

// ringReader reads peer p's ring in this rank's region as a byte stream.
type ringReader struct {
	t        *Transport
	p        int
	consumed int64 // bytes read
	owed     int64 // bytes read but not yet credited to the sender
}

func (r *ringReader) read(ctx context.Context, dst []byte) error {
	t := r.t
	buf := t.reg.Bytes()
	base := t.ringOff(r.p)
	for len(dst) > 0 {
		w := t.reg.Load(t.writtenOff(r.p))
		if w <= r.consumed {
			var err error
			if w, err = t.reg.Wait(ctx, t.writtenOff(r.p), r.consumed+1); err != nil {
				return err
			}
		}
		if w-r.consumed > int64(t.ring) {
			return fmt.Errorf("%w: from r%d: %d bytes in a ring of %d", ErrProtocol, r.p, w-r.consumed, t.ring)
		}
		n := min(int64(len(dst)), w-r.consumed)
		pos := int(r.consumed % int64(t.ring))
		first := min(int(n), t.ring-pos)
		copy(dst, buf[base+pos:base+pos+first])
		copy(dst[first:n], buf[base:])
		dst = dst[n:]
		r.consumed += n
		r.owed += n
		// Hand back space before the sender stalls on a full ring.
		if r.owed >= int64(t.ring/4) {
			if err := r.credit(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// take returns the next n bytes of the stream in a recycled buffer (see
// Recycle) or a new one. When the
// sender can put all of them into the ring at once (n plus the bytes not
// yet credited fit in it), it waits for them and copies them out of the
// ring in one pass into a buffer that is never zeroed first: the bytes
// cross memory once after the transport's put. A larger message streams
// through the ring in pieces into the recycled buffer or a zeroed one.
func (r *ringReader) take(ctx context.Context, n int) ([]byte, error) {
	t := r.t
	if n == 0 {
		return []byte{}, nil
	}
	reuse := t.recycled(n)
	if int64(n)+r.owed > int64(t.ring) {
		dst := reuse
		if dst == nil {
			dst = make([]byte, n)
		}
		return dst, r.read(ctx, dst)
	}
	end := r.consumed + int64(n)
	w := t.reg.Load(t.writtenOff(r.p))
	if w < end {
		var err error
		if w, err = t.reg.Wait(ctx, t.writtenOff(r.p), end); err != nil {
			return nil, err
		}
	}
	if w-r.consumed > int64(t.ring) {
		return nil, fmt.Errorf("%w: from r%d: %d bytes in a ring of %d", ErrProtocol, r.p, w-r.consumed, t.ring)
	}
	buf := t.reg.Bytes()
	base := t.ringOff(r.p)
	pos := int(r.consumed % int64(t.ring))
	first := min(n, t.ring-pos)
	// Appending to a full slice allocates a new buffer without zeroing the
	// part it copies into; a message that wraps around the ring's end is
	// appended to its first part, so every byte is copied once.
	dst := reuse
	switch {
	case dst != nil:
		copy(dst, buf[base+pos:base+pos+first])
		copy(dst[first:], buf[base:base+n-first])
	case first == n:
		dst = append([]byte(nil), buf[base+pos:base+pos+n]...)
	default:
		dst = append(buf[base+pos:base+pos+first:base+pos+first], buf[base:base+n-first]...)
	}
	r.consumed = end
	r.owed += int64(n)
	return dst[:n:n], nil
}

func (r *ringReader) credit(ctx context.Context) error {
	if r.owed == 0 {
		return nil
	}
	if err := r.t.tr.Signal(ctx, r.p, r.t.creditOff(r.t.rank), r.owed); err != nil {
		return err
	}
	r.owed = 0
	return nil
}

func payloadLen(m *tensor.Tensor) int {
	n, _ := tensor.NumElements(m.Shape)
	return n * m.DType.Size()
}

func contiguous(m *tensor.Tensor) bool {
	if m.Strides == nil {
		return true
	}
	if len(m.Strides) != len(m.Shape) {
		return false
	}
	want := tensor.ContiguousStrides(m.Shape)
	for i, d := range m.Shape {
		if d > 1 && m.Strides[i] != want[i] {
			return false
		}
	}
	return true
}

func encodeHeader(tag pipeline.Tag, m *tensor.Tensor) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil tensor", ErrParam)
	}
	if m.DType.Size() == 0 {
		return nil, fmt.Errorf("%w: dtype %v", ErrParam, m.DType)
	}
	if len(m.Shape) > MaxDims {
		return nil, fmt.Errorf("%w: %d dimensions (at most %d)", ErrParam, len(m.Shape), MaxDims)
	}
	n, err := tensor.NumElements(m.Shape)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParam, err)
	}
	if n > MaxMessage/m.DType.Size() {
		return nil, fmt.Errorf("%w: %v %v is more than %d bytes", ErrParam, m.DType, m.Shape, MaxMessage)
	}
	if !contiguous(m) {
		return nil, fmt.Errorf("%w: tensor with strides %v is not contiguous", ErrParam, m.Strides)
	}
	if len(m.Data) < n*m.DType.Size() {
		return nil, fmt.Errorf("%w: %v %v needs %d bytes of host data, has %d", ErrParam, m.DType, m.Shape, n*m.DType.Size(), len(m.Data))
	}
	if tag.Phase < 0 || tag.Phase > maxPhase || tag.Micro < 0 || tag.Micro > maxMicro {
		return nil, fmt.Errorf("%w: tag %v (phase 0…%d, micro-batch 0…%d)", ErrParam, tag, maxPhase, int64(maxMicro))
	}
	h := make([]byte, fixedHdr+8*len(m.Shape))
	le := binary.LittleEndian
	le.PutUint64(h[0:], magic)
	le.PutUint64(h[8:], uint64(tag.Phase))
	le.PutUint64(h[16:], uint64(tag.Kind))
	le.PutUint64(h[24:], uint64(tag.Micro))
	le.PutUint64(h[32:], uint64(m.DType))
	le.PutUint64(h[40:], uint64(len(m.Shape)))
	le.PutUint64(h[48:], uint64(n*m.DType.Size()))
	for i, d := range m.Shape {
		le.PutUint64(h[fixedHdr+8*i:], uint64(d))
	}
	return h, nil
}

var errHeader = errors.New("bad message header")

// decodeHeader parses a header into its tag and a tensor whose Data is a
// zeroed buffer of the payload's size.
func decodeHeader(h []byte) (pipeline.Tag, *tensor.Tensor, error) {
	tag, m, size, err := decodeMeta(h)
	if err != nil {
		return tag, nil, err
	}
	m.Data = make([]byte, size)
	return tag, m, nil
}

// decodeMeta parses a header into its tag, a tensor without Data, and the
// payload's size in bytes.
func decodeMeta(h []byte) (pipeline.Tag, *tensor.Tensor, int, error) {
	le := binary.LittleEndian
	if le.Uint64(h[0:]) != magic {
		return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: magic %#x", errHeader, le.Uint64(h[0:]))
	}
	phase, kind, micro := le.Uint64(h[8:]), le.Uint64(h[16:]), le.Uint64(h[24:])
	if phase > maxPhase || kind > 255 || micro > maxMicro {
		return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: tag phase %d kind %d micro %d", errHeader, phase, kind, micro)
	}
	dt := tensor.DType(le.Uint64(h[32:]))
	if le.Uint64(h[32:]) > 255 || dt.Size() == 0 {
		return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: dtype %d", errHeader, le.Uint64(h[32:]))
	}
	ndim := int(le.Uint64(h[40:]))
	shape := make([]int, ndim)
	n := 1
	for i := range shape {
		d := le.Uint64(h[fixedHdr+8*i:])
		if d > MaxMessage || (d != 0 && uint64(n) > MaxMessage/d) {
			return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: shape dimension %d is %d", errHeader, i, d)
		}
		shape[i] = int(d)
		n *= int(d)
	}
	size := le.Uint64(h[48:])
	if size != uint64(n)*uint64(dt.Size()) || size > MaxMessage {
		return pipeline.Tag{}, nil, 0, fmt.Errorf("%w: %d payload bytes for %v %v", errHeader, size, dt, shape)
	}
	tag := pipeline.Tag{Phase: int(phase), Kind: pipeline.MsgKind(kind), Micro: int(micro)}
	return tag, &tensor.Tensor{DType: dt, Shape: shape, Strides: tensor.ContiguousStrides(shape)}, int(size), nil
}

var _ pipeline.Transport[*tensor.Tensor] = (*Transport)(nil)
