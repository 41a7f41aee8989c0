package ep

import (
	"context"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/mmap"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Transport moves bytes between the registered regions of the ranks of one
// expert-parallel group. It is the small contract that DeepEP's NVSHMEM
// symmetric heap, NCCL GIN, UCCL-EP's proxies and RDMA verbs all provide:
// a region registered once per rank, one-sided puts into a peer's region, a
// signal (atomic add) ordered after the earlier puts to the same peer, a
// barrier and an all-gather for bootstrap.
//
// Ordering: a Signal to dst is applied at dst after every Put to dst issued
// earlier by the same rank (on RDMA: writes then a fetch-and-add on one
// reliable-connected queue pair; on a socket: frames on one stream).
//
// Buffers handed to Put must stay unmodified until the next Signal to the
// same dst returns (so a socket transport may gather them into one writev
// without copying). Puts and signals whose bytes would fall outside the
// destination region fail with ErrRange and write nothing; a transport must
// enforce this on the receiving side too, so that a peer can never write
// outside the region.
//
// All methods are safe for concurrent use by the goroutines of one rank, but
// Register, Barrier and AllGather are collectives: every rank calls them in
// the same order.
type Transport interface {
	// Rank is this rank's index in [0, Size()).
	Rank() int
	// Size is the number of ranks R.
	Size() int
	// Register allocates and registers this rank's region of size bytes (a
	// multiple of 8, aligned to 64) and waits for every rank to do the same.
	// It is called once; the ranks may pass different sizes.
	Register(ctx context.Context, size int) (*Region, error)
	// Put writes the concatenation of bufs at byte offset off of rank dst's
	// region (dst may be this rank).
	Put(ctx context.Context, dst, off int, bufs ...[]byte) error
	// Signal atomically adds delta to the int64 at byte offset off (a
	// multiple of 8) of rank dst's region, after every earlier Put to dst,
	// and wakes dst's waiters.
	Signal(ctx context.Context, dst, off int, delta int64) error
	// Barrier returns when every rank has entered it.
	Barrier(ctx context.Context) error
	// AllGather returns every rank's p, indexed by rank.
	AllGather(ctx context.Context, p []byte) ([][]byte, error)
	// Close releases the transport; pending waits fail with ErrClosed.
	Close() error
}

// Region is a rank's registered memory: a byte slice aligned to 64 bytes
// whose int64 words can be used as signal counters. Transports create it
// (NewRegion), apply remote puts to Bytes and remote signals with Add; the
// Buffer reads it and waits on its counters with Wait.
type Region struct {
	words []uint64
	buf   []byte
	blk   *mmap.Block
	// release frees memory that a transport allocated (NewRegionOn).
	release func()

	mu      sync.Mutex
	ch      chan struct{} // closed and replaced on every Add that has waiters
	waiters int
	dead    chan struct{}
	deadErr error
}

// NewRegion returns a zeroed region of size bytes (rounded up to a multiple
// of 64). Large regions are mapped outside the Go heap, so that pages never
// written are never backed by memory; the transport calls Free once no rank
// can touch the region any more.
func NewRegion(size int) *Region {
	if size < 0 {
		size = 0
	}
	n := (size + 63) / 64 * 8
	blk := mmap.Alloc((n + 8) * 8)
	all := blk.Bytes
	// align the start to 64 bytes
	skip := 0
	if a := uintptr(unsafe.Pointer(unsafe.SliceData(all))) % 64; a != 0 {
		skip = int(64 - a)
	}
	buf := all[skip : skip+n*8]
	var words []uint64
	if n > 0 {
		words = unsafe.Slice((*uint64)(unsafe.Pointer(&buf[0])), n)
	}
	return &Region{words: words, buf: buf, blk: blk, ch: make(chan struct{}), dead: make(chan struct{})}
}

// Free releases the region's memory; nothing may touch it afterwards.
func (r *Region) Free() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blk.Free()
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// NewRegionOn returns a region over mem, memory that a transport allocated
// itself (for example shared memory that peers map, so that their puts
// are plain stores): len(mem) must be a multiple of 64 and mem must start
// on a 64-byte boundary, else it returns an error wrapping ErrConfig. The
// region zeroes mem. Free calls release, when not nil, after which nothing
// may touch mem.
func NewRegionOn(mem []byte, release func()) (*Region, error) {
	if len(mem)%64 != 0 || (len(mem) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%64 != 0) {
		return nil, errorf(ErrConfig, "NewRegionOn: %d bytes at %p: want a multiple of 64 bytes on a 64-byte boundary", len(mem), unsafe.SliceData(mem))
	}
	clear(mem)
	var words []uint64
	if len(mem) > 0 {
		words = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), len(mem)/8)
	}
	return &Region{words: words, buf: mem, release: release, ch: make(chan struct{}), dead: make(chan struct{})}, nil
}

// Bytes returns the region's memory.
func (r *Region) Bytes() []byte { return r.buf }

// Len returns the region's size in bytes.
func (r *Region) Len() int { return len(r.buf) }

func (r *Region) word(off int) (*int64, error) {
	if off < 0 || off%8 != 0 || off+8 > len(r.buf) {
		return nil, errorf(ErrRange, "signal offset %d outside region of %d bytes or not 8-aligned", off, len(r.buf))
	}
	return (*int64)(unsafe.Pointer(&r.words[off/8])), nil
}

// CheckPut reports whether n bytes at off lie inside the region (ErrRange
// otherwise).
func (r *Region) CheckPut(off, n int) error {
	if off < 0 || n < 0 || off > len(r.buf) || n > len(r.buf)-off {
		return errorf(ErrRange, "put of %d bytes at offset %d outside region of %d bytes", n, off, len(r.buf))
	}
	return nil
}

// Write copies the concatenation of bufs to off after a bounds check; it is
// how a transport applies a put to its local region. A write of
// streamWriteMin bytes or more copies with non-temporal stores
// (kernels.StreamCopy, fenced before Write returns).
func (r *Region) Write(off int, bufs ...[]byte) error {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if err := r.CheckPut(off, n); err != nil {
		return err
	}
	if n >= streamWriteMin {
		ks := kernels.Best()
		for _, b := range bufs {
			off += ks.StreamCopy(r.buf[off:], b)
		}
		return nil
	}
	for _, b := range bufs {
		off += copy(r.buf[off:], b)
	}
	return nil
}

// streamWriteMin is the size of a Region.Write from which it streams: a
// dispatch's rows to this rank itself, tens of megabytes at DeepEP's
// sizes, do not stay in the cache anyway.
const streamWriteMin = 4 << 20

// Add atomically adds delta to the int64 counter at off and wakes waiters.
func (r *Region) Add(off int, delta int64) error {
	p, err := r.word(off)
	if err != nil {
		return err
	}
	atomic.AddInt64(p, delta)
	r.mu.Lock()
	if r.waiters > 0 {
		close(r.ch)
		r.ch = make(chan struct{})
	}
	r.mu.Unlock()
	return nil
}

// Load atomically reads the int64 counter at off (0 if off is invalid).
func (r *Region) Load(off int) int64 {
	p, err := r.word(off)
	if err != nil {
		return 0
	}
	return atomic.LoadInt64(p)
}

// Wait blocks until the counter at off is at least target and returns its
// value. It spins briefly, then parks until an Add, the context's end, or
// Abort.
func (r *Region) Wait(ctx context.Context, off int, target int64) (int64, error) {
	p, err := r.word(off)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 32; i++ {
		if v := atomic.LoadInt64(p); v >= target {
			return v, nil
		}
		if i >= 8 {
			runtime.Gosched()
		}
	}
	for {
		r.mu.Lock()
		ch := r.ch
		r.waiters++
		r.mu.Unlock()
		v := atomic.LoadInt64(p)
		if v >= target {
			r.unwait()
			return v, nil
		}
		select {
		case <-ch:
			r.unwait()
		case <-ctx.Done():
			r.unwait()
			return atomic.LoadInt64(p), ctx.Err()
		case <-r.dead:
			r.unwait()
			if v := atomic.LoadInt64(p); v >= target {
				return v, nil
			}
			return v, r.deadErr
		}
	}
}

func (r *Region) unwait() {
	r.mu.Lock()
	r.waiters--
	r.mu.Unlock()
}

// Abort makes every present and future Wait that is not yet satisfied fail
// with err (a transport calls it when a peer dies or the transport closes).
// Only the first call has an effect.
func (r *Region) Abort(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.dead:
		return
	default:
	}
	r.deadErr = err
	close(r.dead)
}
