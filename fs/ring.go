package fs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Op is a ring's direction. A ring does reads or writes, never both
// (USRBIO's for_read).
type Op uint8

// Ring directions.
const (
	Read  Op = iota // the ring reads file data into buffers
	Write           // the ring writes buffer data to files
)

// String returns "read" or "write".
func (o Op) String() string {
	if o == Write {
		return "write"
	}
	return "read"
}

// BatchMode says how Submit groups prepped I/Os into batches (USRBIO's
// io_depth sign convention, made explicit).
type BatchMode uint8

// Batching modes.
const (
	// ASAP dispatches everything submitted at once (USRBIO io_depth 0).
	ASAP BatchMode = iota
	// Exact dispatches only whole batches of exactly Depth I/Os (USRBIO
	// io_depth > 0). A remainder waits for more; Wait fails fast with
	// ErrWouldStall instead of hanging when its min cannot be reached.
	Exact
	// AtMost dispatches batches of up to Depth I/Os; a partial batch goes
	// once Timeout has passed since it was submitted (at once when Timeout
	// is 0). USRBIO io_depth < 0, whose timeout upstream never fires.
	AtMost
)

// String returns "asap", "exact" or "atmost".
func (m BatchMode) String() string {
	switch m {
	case Exact:
		return "exact"
	case AtMost:
		return "atmost"
	}
	return "asap"
}

// Batch is a ring's batching policy.
type Batch struct {
	Mode    BatchMode     // ASAP, Exact or AtMost
	Depth   int           // batch size for Exact and AtMost, 1..Entries
	Timeout time.Duration // AtMost only: how long a partial batch may wait
}

// Priority is a ring's scheduling class (USRBIO priority: <0 high, 0 normal,
// >0 low). It maps to the io_uring SQE ioprio on uring.
type Priority int8

// Priorities.
const (
	Normal Priority = 0
	High   Priority = -1
	Low    Priority = 1
)

// RingFlags are USRBIO ring flags (HF3FS_IOR_*). Unlike the C API they can
// be set together with a priority.
type RingFlags uint64

// Ring flags.
const (
	// AllowReadUncommitted: on 3FS, a relaxed CRAQ read may return a
	// pending version. Local backends read committed data always.
	AllowReadUncommitted RingFlags = 1
	// ForbidReadHoles: a read touching a hole fails with ENODATA instead of
	// returning zeros. Supported where Features().ForbidReadHoles is true.
	ForbidReadHoles RingFlags = 2
)

// RingOpts configures NewRing.
type RingOpts struct {
	Entries  int       // slots (I/Os prepped or in flight at once), 1..32768
	Op       Op        // Read or Write
	Batch    Batch     // batching policy (zero value: ASAP)
	Priority Priority  // scheduling class (zero value: Normal)
	Flags    RingFlags // USRBIO ring flags; may be combined with any Priority
	// Timeout bounds how long the ring waits on I/O in flight that makes
	// no progress (a hung or dead daemon or device): Wait returns
	// ErrTimeout when no completion arrived for this long, and Close
	// gives up draining after this long (0: no bound; the context's
	// deadline still bounds Wait). On hf3fs a daemon that dies is also
	// noticed on its own within about 50 ms: its I/O in flight then
	// completes with ENOTCONN.
	Timeout time.Duration
}

// Req is one I/O request: Buf.Len() bytes at file offset Off, between File
// and Buf. Tag is returned unchanged in the Completion (USRBIO's userdata,
// a number instead of a pointer).
type Req struct {
	File *File  // a File registered with the ring's Client
	Off  int64  // file offset in bytes, >= 0
	Buf  Region // memory to read into or write from
	Tag  uint64 // caller's number, returned in the Completion
}

// Completion is the result of one I/O (hf3fs_cqe). N is the byte count:
// a read at or past end of file returns fewer bytes than asked (0 past EOF),
// and a hole reads as zeros counted in N. Err is nil or a syscall.Errno
// (EIO, ENOSPC, ...), or ErrClosed for I/O dropped by Ring.Close.
type Completion struct {
	Slot int    // the slot Prep returned
	Tag  uint64 // the request's Tag
	N    int64  // bytes transferred (0 when Err is set)
	Err  error  // nil, or the I/O's error
}

// RingStats counts a ring's activity.
type RingStats struct {
	Prepped    uint64 // requests accepted by Prep
	Dispatched uint64 // requests handed to the backend
	Completed  uint64 // completions returned by Wait
	Batches    uint64 // engine submissions (io_uring_enter calls on uring)
	Waits      uint64 // Wait calls
}

// Ring is an I/O ring, the Ior of USRBIO (hf3fs_iorcreate4): Prep queues
// requests into free slots, Submit dispatches them according to the
// batching mode, and Wait collects completions in completion order (not
// submission order). Prep and Submit are meant for one goroutine and Wait
// for one (possibly another); all three are safe to call concurrently.
type Ring struct {
	c    *Client
	opts RingOpts
	eng  Engine

	mu        sync.Mutex // submission side and slot table
	slots     []IO
	ios       []IO // Submit's argument, rebuilt for each batch
	free      []int32
	queue     []int32 // prepped, in order
	submitted int     // queue[:submitted] were passed to Submit
	partialAt time.Time
	inflight  int
	closed    bool
	released  bool // the engine is closed (Close drained the I/O)
	stats     RingStats

	cmu     sync.Mutex // completion side
	scratch []IOResult
	waits   atomic.Uint64
}

// NewRing creates a ring. Errors: ErrInvalid (naming the option) for
// Entries outside 1..32768, an unknown Op or Mode, a Depth outside
// 1..Entries for Exact/AtMost, a negative Timeout; ErrUnsupported for a
// flag the backend cannot honour; ErrClosed after Client.Close.
func (c *Client) NewRing(o RingOpts) (*Ring, error) {
	if o.Entries < 1 || o.Entries > 32768 {
		return nil, fmt.Errorf("%w: ring Entries %d outside 1..32768", ErrInvalid, o.Entries)
	}
	if o.Op > Write {
		return nil, fmt.Errorf("%w: ring Op %d", ErrInvalid, o.Op)
	}
	switch o.Batch.Mode {
	case ASAP:
	case Exact, AtMost:
		if o.Batch.Depth < 1 || o.Batch.Depth > o.Entries {
			return nil, fmt.Errorf("%w: Batch.Depth %d outside 1..Entries(%d)", ErrInvalid, o.Batch.Depth, o.Entries)
		}
	default:
		return nil, fmt.Errorf("%w: Batch.Mode %d", ErrInvalid, o.Batch.Mode)
	}
	if o.Batch.Timeout < 0 {
		return nil, fmt.Errorf("%w: Batch.Timeout %v < 0", ErrInvalid, o.Batch.Timeout)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("%w: ring Timeout %v < 0", ErrInvalid, o.Timeout)
	}
	if o.Flags&^(AllowReadUncommitted|ForbidReadHoles) != 0 {
		return nil, fmt.Errorf("%w: ring Flags %#x", ErrInvalid, uint64(o.Flags))
	}
	if o.Flags&ForbidReadHoles != 0 && !c.feat.ForbidReadHoles {
		return nil, fmt.Errorf("%w: ForbidReadHoles on backend %s", ErrUnsupported, c.feat.Backend)
	}
	r := &Ring{
		c:       c,
		opts:    o,
		slots:   make([]IO, o.Entries),
		ios:     make([]IO, 0, o.Entries),
		free:    make([]int32, o.Entries),
		queue:   make([]int32, 0, o.Entries),
		scratch: make([]IOResult, o.Entries),
	}
	for i := range r.free {
		r.free[i] = int32(o.Entries - 1 - i)
	}
	eng, err := c.be.NewEngine(o)
	if err != nil {
		return nil, err
	}
	r.eng = eng
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		eng.Close()
		return nil, ErrClosed
	}
	c.rings[r] = struct{}{}
	c.mu.Unlock()
	return r, nil
}

// Entries returns the number of slots (hf3fs_io_entries).
func (r *Ring) Entries() int { return r.opts.Entries }

// Opts returns the options the ring was created with.
func (r *Ring) Opts() RingOpts { return r.opts }

// Stats returns the ring's counters.
func (r *Ring) Stats() RingStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Waits = r.waits.Load()
	return st
}

// Prep queues one request and returns its slot (hf3fs_prep_io). Errors:
// ErrRingFull when every slot is taken; ErrUnregistered for a closed File or
// one of another Client; ErrWrongDirection when the File's open mode does
// not allow the ring's Op; ErrRange for a zero or foreign Region, a closed
// Buffer or a negative offset; ErrAlignment for an unaligned O_DIRECT
// request; ErrClosed after Close. It does not allocate.
func (r *Ring) Prep(q Req) (int, error) {
	f, b := q.File, q.Buf.buf
	if f == nil || f.c != r.c {
		return -1, ErrUnregistered
	}
	if b == nil || b.c != r.c {
		return -1, ErrRange
	}
	if q.Off < 0 {
		return -1, ErrRange
	}
	if r.opts.Op == Read && !f.canRead() || r.opts.Op == Write && !f.canWrite() {
		return -1, ErrWrongDirection
	}
	if f.offAlign > 0 {
		addr := int(uintptrOf(q.Buf.Bytes()))
		if q.Off%int64(f.offAlign) != 0 || q.Buf.n%f.offAlign != 0 || addr%f.memAlign != 0 {
			return -1, ErrAlignment
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return -1, ErrClosed
	}
	if len(r.free) == 0 {
		r.mu.Unlock()
		return -1, ErrRingFull
	}
	// Take references before checking closed: File.Close and Buffer.Close
	// set closed before checking the counts, so one side always sees the
	// other.
	f.inflight.Add(1)
	b.inflight.Add(1)
	if f.closed.Load() {
		f.inflight.Add(-1)
		b.inflight.Add(-1)
		r.mu.Unlock()
		return -1, ErrUnregistered
	}
	if b.closed.Load() {
		f.inflight.Add(-1)
		b.inflight.Add(-1)
		r.mu.Unlock()
		return -1, ErrRange
	}
	s := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.slots[s] = IO{Slot: s, Tag: q.Tag, File: f, Handle: f.impl, FileIndex: f.idx, Off: q.Off, Buf: q.Buf, BufferIndex: b.idx}
	r.queue = append(r.queue, s)
	r.stats.Prepped++
	r.mu.Unlock()
	return int(s), nil
}

// Submit hands every prepped request to the batching policy
// (hf3fs_submit_ios): ASAP dispatches all of them; Exact dispatches whole
// batches of Depth; AtMost dispatches full batches and a partial one once
// Timeout has passed (checked here and in Wait). Each dispatched batch is
// one engine submission (one io_uring_enter on uring). Errors: ErrClosed,
// or the engine's submission error.
func (r *Ring) Submit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.submitted < len(r.queue) && r.opts.Batch.Mode == AtMost && r.partialAt.IsZero() {
		r.partialAt = time.Now()
	}
	r.submitted = len(r.queue)
	return r.dispatchLocked(time.Time{})
}

// dispatchLocked passes submitted requests to the engine as the batching
// mode allows. now is used for the AtMost timeout (zero: read the clock
// only if needed).
func (r *Ring) dispatchLocked(now time.Time) error {
	for r.submitted > 0 {
		n := r.submitted
		switch r.opts.Batch.Mode {
		case Exact:
			if n < r.opts.Batch.Depth {
				return nil
			}
			n = r.opts.Batch.Depth
		case AtMost:
			if n >= r.opts.Batch.Depth {
				n = r.opts.Batch.Depth
			} else if r.opts.Batch.Timeout > 0 {
				if now.IsZero() {
					now = time.Now()
				}
				if now.Sub(r.partialAt) < r.opts.Batch.Timeout {
					return nil
				}
			}
		}
		r.ios = r.ios[:0]
		for _, s := range r.queue[:n] {
			r.ios = append(r.ios, r.slots[s])
		}
		err := r.eng.Submit(r.ios)
		clear(r.ios)
		if err != nil {
			return err
		}
		r.inflight += n
		r.stats.Dispatched += uint64(n)
		r.stats.Batches++
		rest := copy(r.queue, r.queue[n:])
		r.queue = r.queue[:rest]
		r.submitted -= n
		if r.opts.Batch.Mode == AtMost {
			if r.submitted > 0 {
				r.partialAt = time.Now()
			} else {
				r.partialAt = time.Time{}
			}
		}
	}
	return nil
}

// Wait collects between minN and len(out) completions into out and returns
// how many it stored (hf3fs_wait_for_ios; minN is clamped to 0..len(out),
// and 0 polls without blocking). It blocks until minN are available; until
// ctx is done (returning ctx.Err() with the completions gathered so far);
// or until it can tell that minN can never be reached from the I/O
// dispatched or pending in an AtMost batch (ErrWouldStall, at once, with
// what is ready: for example Exact batching with fewer than Depth requests
// queued); or, with RingOpts.Timeout, until no completion has arrived
// for that long (ErrTimeout, with what is ready). After a Close that
// released the ring it returns ErrClosed. Completions come in completion
// order. It does not allocate.
func (r *Ring) Wait(ctx context.Context, out []Completion, minN int) (int, error) {
	want := max(0, min(minN, len(out)))
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if r.released {
		// The engine's memory (an io_uring's mapped queues) is gone.
		return 0, ErrClosed
	}
	n := 0
	done := ctx.Done()
	var stallAt time.Time // RingOpts.Timeout past the last progress
	if r.opts.Timeout > 0 {
		stallAt = time.Now().Add(r.opts.Timeout)
	}
	for {
		got := r.collect(out[n:])
		n += got
		if n >= want {
			r.countWait()
			return n, nil
		}
		if !stallAt.IsZero() {
			now := time.Now()
			if got > 0 {
				stallAt = now.Add(r.opts.Timeout)
			} else if !now.Before(stallAt) {
				r.countWait()
				return n, fmt.Errorf("%w: Wait: no completion for %v (%d of %d arrived)", ErrTimeout, r.opts.Timeout, n, want)
			}
		}
		r.mu.Lock()
		var until time.Time
		if r.submitted > 0 && r.opts.Batch.Mode == AtMost {
			now := time.Now()
			if err := r.dispatchLocked(now); err != nil {
				r.mu.Unlock()
				return n, err
			}
			if r.submitted > 0 {
				until = r.partialAt.Add(r.opts.Batch.Timeout)
			}
		}
		possible := r.inflight
		if r.opts.Batch.Mode == AtMost {
			possible += r.submitted
		}
		r.mu.Unlock()
		if n+possible < want {
			r.countWait()
			return n, ErrWouldStall
		}
		if done != nil {
			select {
			case <-done:
				n += r.collect(out[n:])
				r.countWait()
				return n, ctx.Err()
			default:
			}
		}
		if !stallAt.IsZero() && (until.IsZero() || stallAt.Before(until)) {
			until = stallAt
		}
		r.eng.Block(done, want-n, until)
	}
}

func (r *Ring) countWait() { r.waits.Add(1) }

// collect reaps engine completions into out and frees their slots.
func (r *Ring) collect(out []Completion) int {
	if len(out) == 0 {
		return 0
	}
	got := r.eng.Reap(r.scratch[:min(len(out), len(r.scratch))])
	if got == 0 {
		return 0
	}
	r.mu.Lock()
	for i, e := range r.scratch[:got] {
		s := &r.slots[e.Slot]
		c := &out[i]
		c.Slot = int(e.Slot)
		c.Tag = s.Tag
		if e.Res < 0 {
			c.N = 0
			c.Err = syscall.Errno(-e.Res)
		} else if e.Res > int64(s.Buf.n) {
			// More bytes than asked for (a misbehaving 3FS daemon): report
			// EIO rather than a count that overruns the region.
			c.N = 0
			c.Err = syscall.EIO
		} else {
			c.N = e.Res
			c.Err = nil
		}
		s.File.inflight.Add(-1)
		s.Buf.buf.inflight.Add(-1)
		*s = IO{}
		r.free = append(r.free, e.Slot)
	}
	r.inflight -= got
	r.stats.Completed += uint64(got)
	r.mu.Unlock()
	return got
}

// Close stops the ring: requests prepped but not dispatched are dropped,
// I/O in flight is waited for (its completions are discarded), then the
// ring's resources are released. Safe to call more than once. With
// RingOpts.Timeout, Close gives up after that long without progress and
// returns ErrTimeout: the ring stays closed to new requests, the I/O it
// could not drain keeps its Buffers and Files busy (their memory is never
// freed under a transfer), and a later Close tries again.
func (r *Ring) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		for _, s := range r.queue {
			sl := &r.slots[s]
			sl.File.inflight.Add(-1)
			sl.Buf.buf.inflight.Add(-1)
			*sl = IO{}
			r.free = append(r.free, s)
		}
		r.queue = r.queue[:0]
		r.submitted = 0
	}
	r.mu.Unlock()

	r.cmu.Lock()
	if r.released {
		r.cmu.Unlock()
		return nil
	}
	var sink [64]Completion
	var deadline time.Time
	if r.opts.Timeout > 0 {
		deadline = time.Now().Add(r.opts.Timeout)
	}
	for {
		r.mu.Lock()
		left := r.inflight
		r.mu.Unlock()
		if left == 0 {
			break
		}
		if r.collect(sink[:]) > 0 {
			if !deadline.IsZero() {
				deadline = time.Now().Add(r.opts.Timeout)
			}
			continue
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			r.cmu.Unlock()
			return fmt.Errorf("%w: Ring.Close: %d I/O still in flight after %v without progress; call Close again", ErrTimeout, left, r.opts.Timeout)
		}
		r.eng.Block(nil, 1, deadline)
	}
	err := r.eng.Close()
	r.released = true
	r.cmu.Unlock()

	r.c.mu.Lock()
	delete(r.c.rings, r)
	r.c.mu.Unlock()
	return err
}

// forgetFile and forgetBuffer drop a closing File's or Buffer's
// registration (by table index) from the ring's engine.
func (r *Ring) forgetFile(idx int) {
	r.mu.Lock()
	if !r.closed {
		r.eng.ForgetFile(idx)
	}
	r.mu.Unlock()
}

func (r *Ring) forgetBuffer(idx int) {
	r.mu.Lock()
	if !r.closed {
		r.eng.ForgetBuffer(idx)
	}
	r.mu.Unlock()
}

// Enters returns the number of io_uring_enter calls the ring made, or -1
// when the ring is not on the uring backend.
func (r *Ring) Enters() int64 {
	if e, ok := r.eng.(interface{ enters() int64 }); ok {
		return e.enters()
	}
	return -1
}
