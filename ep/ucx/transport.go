package ucx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/internal/kernels"
)

// Options configures Dial.
type Options struct {
	// Boot is the bootstrap: the ranks meet over ep/sock (TCP, or Unix
	// sockets on one host) to exchange UCP worker addresses and remote
	// keys, and Barrier, AllGather and the detection of a dead peer ride
	// on it. sock.OptionsFromEnv and sock.LaunchedOptions fill it from
	// MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE.
	Boot sock.Options
	// Config holds UCX options applied over the UCX_* environment, named
	// without the UCX_ prefix, e.g. {"TLS": "tcp,self"} or
	// {"NET_DEVICES": "mlx5_0:1"}. A value UCX cannot parse fails Dial
	// with ep.ErrConfig (UCX 1.13 ignores names it does not know).
	Config map[string]string
	// ErrMode is UCP's endpoint error handling mode: "peer"
	// (UCP_ERR_HANDLING_MODE_PEER: operations to a peer that died fail
	// instead of hanging), "none", or "" (auto): "peer" unless UCX would
	// use a shared-memory transport (posix, sysv, cma, knem, xpmem), which
	// in UCX 1.13 cannot detect a dead peer and is left out of a "peer"
	// endpoint's lanes. Either way a peer that dies fails this rank's
	// waits, through the bootstrap's connection to it.
	ErrMode string
	// NoMappedPuts makes every Put a ucp_put_nbx, even to a peer whose
	// region UCX maps into this process (see Put); for measurements and
	// tests of the UCP put path.
	NoMappedPuts bool
}

// ErrMode values.
const (
	ErrModeAuto = ""
	ErrModePeer = "peer"
	ErrModeNone = "none"
)

// Tags of the signal messages: the high 32 bits say "signal", the low 32
// bits carry the sending rank.
const (
	sigTag     uint64 = 0x5349474e << 32 // "SIGN"
	sigTagMask uint64 = 0xffffffff << 32
	sigMsgLen         = 24 // src, off, delta: three little-endian 64-bit words
)

// streamMin is the size in bytes of a mapped Put (all its buffers) from
// which it copies with non-temporal stores (kernels.StreamCopy): the bytes
// are for another process, and a copy that large is not read from the
// cache anyway. In a 4-rank DeepEP-size dispatch a rank's rows to one peer
// are about 27 MB (streamed: 1.13–1.33× faster dispatch and combine in
// alternating runs); a low-latency message is one row, and a 1 MiB put
// that is repeated from a cache-hot buffer is faster with plain stores.
const streamMin = 4 << 20

// Transport is one rank's endpoint over UCP; it implements ep.Transport.
type Transport struct {
	l     *lib
	boot  *sock.Transport
	rank  int
	world int

	// mu serializes every UCP call on the worker (the worker is created
	// UCS_THREAD_MODE_SERIALIZED; goroutines move between threads).
	mu     sync.Mutex
	uctx   uintptr
	worker uintptr
	eps    []uintptr // nil at this rank
	peers  []peerState

	// mapMu guards peerState.mapped: Put and Signal hold it shared while
	// they use a mapping, teardown exclusively while it drops them.
	mapMu    sync.RWMutex
	noMapped bool
	ks       kernels.Set // StreamCopy of large mapped puts

	reg   atomic.Pointer[ep.Region]
	memh  uintptr
	sizes []int // every rank's region size, after Register

	sigBuf []byte  // the posted signal receive lands here (pinned)
	sigReq request // the posted signal receive, or 0
	pin    runtime.Pinner
	// orphans are requests abandoned by a wait that gave up (deadline or
	// failure); Close frees them once UCX has completed them.
	orphans []request

	failMu  sync.Mutex
	failed  error
	closed  bool
	broken  atomic.Bool // failed or closed: usable takes failMu only then
	stop    chan struct{}
	done    sync.WaitGroup
	cancelW context.CancelFunc

	transports []string
	peerMode   bool
	id         uintptr       // key of this transport in the endpoint error table
	epFailed   []atomic.Bool // set by UCX's error callback, per peer
}

// peerState is what a rank knows of one peer, guarded by Transport.mu
// (mapped by Transport.mapMu).
type peerState struct {
	rkey  uintptr
	raddr uint64 // the peer's region address in its own address space
	// mapped is the peer's whole region as this process maps it
	// (ucp_rkey_ptr: the peer is on this host and its region is
	// shared memory), or nil: puts to the peer are then ucp_put_nbx.
	mapped []byte
	// dirty: a ucp_put_nbx to the peer was started since the last flush.
	dirty bool
	pend  []pendingPut
	pin   runtime.Pinner // pins the buffers of pend
}

// pendingPut is a ucp_put_nbx that had not completed locally when it was
// started; buf keeps the source alive until the next flush reaps it.
type pendingPut struct {
	req request
	buf []byte
}

// Dial joins this rank to the group: it bootstraps over ep/sock, creates
// a UCP context (reading UCX_* from the environment, then opts.Config)
// and one worker, and connects an endpoint to every peer's worker with
// UCP_ERR_HANDLING_MODE_PEER. It is a collective over processes: when a
// rank cannot set up UCX, every rank fails with that rank's error.
// Errors wrap ErrUnavailable (no libucp), ep.ErrConfig (bad options, a
// UCX option or UCX_TLS that leaves no usable transport) or
// ep.ErrTransport (bootstrap or connection failure).
func Dial(ctx context.Context, opts Options) (*Transport, error) {
	l, err := load()
	if err != nil {
		return nil, err
	}
	switch opts.ErrMode {
	case ErrModeAuto, ErrModePeer, ErrModeNone:
	default:
		return nil, fmt.Errorf("%w: ucx Options.ErrMode = %q, want \"peer\", \"none\" or \"\"", ep.ErrConfig, opts.ErrMode)
	}
	boot, err := sock.Dial(ctx, opts.Boot)
	if err != nil {
		return nil, err
	}
	t := &Transport{l: l, boot: boot, rank: boot.Rank(), world: boot.Size(), stop: make(chan struct{}), noMapped: opts.NoMappedPuts, ks: kernels.Best()}
	if err := t.setup(ctx, opts); err != nil {
		t.teardown()
		boot.Close()
		return nil, err
	}
	return t, nil
}

func (t *Transport) setup(ctx context.Context, opts Options) error {
	// A one-word sock region: its waits fail as soon as the bootstrap sees
	// a peer die, which is how a dead peer fails this transport's waits.
	live, err := t.boot.Register(ctx, 8)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	t.cancelW = cancel
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		if _, err := live.Wait(wctx, 0, 1); err != nil && wctx.Err() == nil {
			t.fail(fmt.Errorf("%w: ucx rank %d: %w", ep.ErrTransport, t.rank, err))
		}
	}()

	// UCX set-up; its outcome is all-gathered so that a rank with a bad
	// configuration fails every rank with its message.
	addr, uerr := t.initUCP(opts)
	msg := append([]byte{0}, addr...)
	if uerr != nil {
		msg = append([]byte{1}, uerr.Error()...)
	}
	all, err := t.boot.AllGather(ctx, msg)
	if err != nil {
		return err
	}
	if uerr != nil {
		return uerr
	}
	for r, m := range all {
		if len(m) == 0 || m[0] != 0 {
			text := "sent nothing"
			if len(m) > 0 {
				text = string(m[1:])
			}
			return fmt.Errorf("%w: ucx rank %d: peer rank %d could not set up UCX: %s", ep.ErrConfig, t.rank, r, text)
		}
	}
	t.eps = make([]uintptr, t.world)
	t.peers = make([]peerState, t.world)
	t.epFailed = make([]atomic.Bool, t.world)
	t.id = registerErrTarget(t)
	t.mu.Lock()
	for r, m := range all {
		if r == t.rank {
			continue
		}
		if t.eps[r], err = t.l.newEp(t.worker, m[1:], t.peerMode, t.id<<16|uintptr(r)); err != nil {
			t.mu.Unlock()
			return fmt.Errorf("ucx rank %d: connecting to rank %d: %w", t.rank, r, err)
		}
	}
	t.mu.Unlock()
	t.done.Add(1)
	go t.progressLoop()
	return nil
}

// initUCP creates the context and the worker and returns the worker's
// address.
func (t *Transport) initUCP(opts Options) ([]byte, error) {
	var err error
	if t.uctx, err = t.l.newContext(opts.Config, "fireflyer-ep-rank-"+strconv.Itoa(t.rank)); err != nil {
		if !errors.Is(err, ep.ErrConfig) {
			err = fmt.Errorf("%w: %w (check UCX_TLS and UCX_NET_DEVICES: `ucx_info -d` lists this host's transports)", ep.ErrConfig, err)
		}
		return nil, err
	}
	if t.worker, err = t.l.newWorker(t.uctx); err != nil {
		return nil, err
	}
	t.transports = transportsOf(t.l.contextInfo(t.uctx))
	t.peerMode = opts.ErrMode == ErrModePeer || opts.ErrMode == ErrModeAuto && !hasSharedMemory(t.transports)
	return t.l.workerAddress(t.worker)
}

// hasSharedMemory reports whether a transport of the list ("posix/memory",
// ...) is one of UCX's shared-memory transports.
func hasSharedMemory(tls []string) bool {
	for _, tl := range tls {
		switch name, _, _ := strings.Cut(tl, "/"); name {
		case "posix", "sysv", "cma", "knem", "xpmem":
			return true
		}
	}
	return false
}

// Transports returns the transport/device pairs UCX may use for this rank
// ("tcp/lo", "posix/memory", ...), as ucp_context_print_info lists them.
func (t *Transport) Transports() []string { return append([]string(nil), t.transports...) }

// PeerErrorHandling reports whether the endpoints use
// UCP_ERR_HANDLING_MODE_PEER (see Options.ErrMode).
func (t *Transport) PeerErrorHandling() bool { return t.peerMode }

// Rank returns this rank's index.
func (t *Transport) Rank() int { return t.rank }

// Size returns the number of ranks.
func (t *Transport) Size() int { return t.world }

func (t *Transport) fail(err error) {
	t.failMu.Lock()
	if t.failed == nil {
		t.failed = err
	}
	t.broken.Store(true)
	t.failMu.Unlock()
	if r := t.reg.Load(); r != nil {
		r.Abort(err)
	}
}

func (t *Transport) usable() error {
	if !t.broken.Load() {
		return nil
	}
	t.failMu.Lock()
	defer t.failMu.Unlock()
	if t.closed {
		return fmt.Errorf("%w: ucx rank %d", ep.ErrClosed, t.rank)
	}
	return t.failed
}

// progressLoop drives the worker while nobody else does: incoming
// connection set-up, puts that need the target's progress (tcp, and RMA
// emulated over active messages), and the signal receives. It spins while
// there is work and backs off to sleeps of up to 100 µs when idle.
func (t *Transport) progressLoop() {
	defer t.done.Done()
	idle := 0
	for {
		select {
		case <-t.stop:
			return
		default:
		}
		t.mu.Lock()
		n := t.l.progress(t.worker)
		got, err := t.pollSignalsLocked()
		t.mu.Unlock()
		if err != nil {
			t.fail(err)
		}
		if n > 0 || got {
			idle = 0
			continue
		}
		idle++
		switch {
		case idle < 64:
			runtime.Gosched()
		default:
			time.Sleep(time.Duration(min(idle-63, 100)) * time.Microsecond)
		}
	}
}

// pollSignalsLocked applies every signal message that has arrived and
// keeps one receive posted; it reports whether any arrived. The receiver
// checks each signal's offset against its own region, so a peer can never
// add outside it.
func (t *Transport) pollSignalsLocked() (bool, error) {
	if t.reg.Load() == nil {
		return false, nil // signals wait in UCX's unexpected queue until Register
	}
	got := false
	for {
		if t.sigReq == 0 {
			req, err := t.l.tagRecv(t.worker, unsafe.Pointer(&t.sigBuf[0]), sigMsgLen, sigTag, sigTagMask)
			if err != nil {
				return got, fmt.Errorf("ucx rank %d: posting the signal receive: %w", t.rank, err)
			}
			if req == 0 { // completed at once
				if err := t.applySignal(); err != nil {
					return true, err
				}
				got = true
				continue
			}
			t.sigReq = req
		}
		st := t.l.status(t.sigReq)
		if st == ucsInProgress {
			return got, nil
		}
		t.l.free(t.sigReq)
		t.sigReq = 0
		if st != ucsOK {
			return got, fmt.Errorf("ucx rank %d: signal receive: %w", t.rank, t.l.statusErr("ucp_tag_recv_nbx", st))
		}
		if err := t.applySignal(); err != nil {
			return true, err
		}
		got = true
	}
}

func (t *Transport) applySignal() error {
	reg := t.reg.Load()
	src := binary.LittleEndian.Uint64(t.sigBuf[0:])
	off := binary.LittleEndian.Uint64(t.sigBuf[8:])
	delta := int64(binary.LittleEndian.Uint64(t.sigBuf[16:]))
	if off > uint64(reg.Len()) {
		return fmt.Errorf("%w: ucx rank %d: rank %d signalled offset %d outside the region of %d bytes", ep.ErrRange, t.rank, src, off, reg.Len())
	}
	if err := reg.Add(int(off), delta); err != nil {
		return fmt.Errorf("ucx rank %d: signal from rank %d: %w", t.rank, src, err)
	}
	return nil
}

// wait polls req to completion, driving the worker, until ctx ends or the
// transport fails; it frees req. A request given up on is kept for Close.
func (t *Transport) wait(ctx context.Context, req request, fn, what string) error {
	if req == 0 {
		return nil
	}
	for i := 0; ; i++ {
		t.mu.Lock()
		t.l.progress(t.worker)
		st := t.l.status(req)
		if st != ucsInProgress {
			t.l.free(req)
			t.mu.Unlock()
			if st != ucsOK {
				return fmt.Errorf("ucx rank %d: %s: %w", t.rank, what, t.l.statusErr(fn, st))
			}
			return nil
		}
		t.mu.Unlock()
		err := t.usable()
		if err == nil {
			err = ctx.Err()
			if err != nil {
				err = fmt.Errorf("%w: ucx rank %d: %s: %w", ep.ErrTransport, t.rank, what, err)
			}
		}
		if err != nil {
			t.mu.Lock()
			t.orphans = append(t.orphans, req)
			t.mu.Unlock()
			return err
		}
		if i > 32 {
			if i < 256 {
				runtime.Gosched()
			} else {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
}

// Register allocates this rank's region, maps it with ucp_mem_map and
// all-gathers every rank's region size, address and packed remote key
// (the rkey covers exactly the region), so that puts are bounds-checked
// at the sender.
func (t *Transport) Register(ctx context.Context, size int) (*ep.Region, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if size < 0 || size%8 != 0 {
		return nil, fmt.Errorf("%w: ucx Register: size %d is not a non-negative multiple of 8", ep.ErrConfig, size)
	}
	t.mu.Lock()
	if t.reg.Load() != nil || t.sizes != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("%w: ucx Register called twice", ep.ErrConfig)
	}
	reg, err := t.newRegionLocked(size)
	var packed []byte
	var base uint64
	if err == nil && reg.Len() > 0 {
		base = uint64(uintptr(unsafe.Pointer(&reg.Bytes()[0])))
		packed, err = t.l.rkeyPack(t.uctx, t.memh)
	}
	if err == nil {
		t.sigBuf = make([]byte, sigMsgLen)
		t.pin.Pin(&t.sigBuf[0])
		t.reg.Store(reg)
	}
	t.mu.Unlock()
	if err != nil {
		if reg != nil {
			reg.Free()
		}
		err = fmt.Errorf("ucx rank %d: registering %d bytes: %w", t.rank, size, err)
		t.fail(err)
		return nil, err
	}
	if ferr := t.usable(); ferr != nil {
		reg.Abort(ferr)
	}
	msg := binary.LittleEndian.AppendUint64(nil, uint64(reg.Len()))
	msg = binary.LittleEndian.AppendUint64(msg, base)
	msg = append(msg, packed...)
	all, err := t.boot.AllGather(ctx, msg)
	if err != nil {
		return nil, err
	}
	sizes := make([]int, t.world)
	t.mu.Lock()
	defer t.mu.Unlock()
	for r, m := range all {
		if len(m) < 16 {
			return nil, fmt.Errorf("%w: ucx rank %d: rank %d sent a malformed region description", ep.ErrTransport, t.rank, r)
		}
		sizes[r] = int(binary.LittleEndian.Uint64(m))
		if r == t.rank || sizes[r] == 0 {
			continue
		}
		p := &t.peers[r]
		p.raddr = binary.LittleEndian.Uint64(m[8:])
		if p.rkey, err = t.l.rkeyUnpack(t.eps[r], m[16:]); err != nil {
			return nil, fmt.Errorf("ucx rank %d: remote key of rank %d: %w", t.rank, r, err)
		}
		if !t.noMapped {
			mapped := t.l.rkeyPtr(p.rkey, p.raddr, sizes[r])
			t.mapMu.Lock()
			p.mapped = mapped
			t.mapMu.Unlock()
		}
	}
	t.sizes = sizes
	return reg, nil
}

// peerLeft reports whether err, from an operation to dst, comes from dst
// having closed its transport in an orderly way (it said goodbye on the
// bootstrap): what is still sent to such a peer is dropped, as ep/sock
// does. An error of this rank's own (closed, failed, deadline) is not.
func (t *Transport) peerLeft(err error, dst int) bool {
	var se *StatusError
	if err != nil && !errors.As(err, &se) {
		return false
	}
	return t.boot.PeerClosed(dst, 2*time.Second)
}

// newRegionLocked returns the region of size bytes (rounded up to 64) and
// maps it (t.memh). UCX allocates it where it can (UCP_MEM_MAP_ALLOCATE:
// with posix or sysv enabled, shared memory that the peers on this host
// map, so that their puts are plain stores); otherwise, and for an empty
// region, it is ep.NewRegion's memory, registered with ucp_mem_map.
func (t *Transport) newRegionLocked(size int) (*ep.Region, error) {
	n := (size + 63) / 64 * 64
	if n > 0 {
		if m, p, err := t.l.memAlloc(t.uctx, n); err == nil {
			reg, err := ep.NewRegionOn(unsafe.Slice((*byte)(p), n), nil)
			if err == nil {
				t.memh = m
				return reg, nil
			}
			_ = t.l.memUnmap(t.uctx, m)
		}
	}
	reg := ep.NewRegion(size)
	if reg.Len() == 0 {
		return reg, nil
	}
	m, err := t.l.memMap(t.uctx, unsafe.Pointer(&reg.Bytes()[0]), reg.Len())
	if err != nil {
		return reg, err
	}
	t.memh = m
	return reg, nil
}

func (t *Transport) check(dst int, what string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if dst < 0 || dst >= t.world {
		return fmt.Errorf("%w: destination rank %d outside [0, %d)", ep.ErrRange, dst, t.world)
	}
	if t.sizes == nil {
		return fmt.Errorf("%w: %s before Register", ep.ErrConfig, what)
	}
	return nil
}

// Put writes the concatenation of bufs at off of rank dst's region. When
// UCX maps dst's region into this process (dst is on this host and its
// region is shared memory: posix or sysv in UCX_TLS; ucp_rkey_ptr gives
// the pointer), Put copies the buffers straight into it and returns with
// the bytes in place: no UCP call, no staging. Otherwise it starts one
// ucp_put_nbx per buffer, straight from the buffers (no copy), and does
// not wait: those puts complete at the next Signal or Barrier, so bufs
// must stay unmodified until then.
func (t *Transport) Put(ctx context.Context, dst, off int, bufs ...[]byte) error {
	if err := t.check(dst, "Put"); err != nil {
		return err
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if off < 0 || off > t.sizes[dst] || n > t.sizes[dst]-off {
		return fmt.Errorf("%w: put of %d bytes at offset %d outside rank %d's region of %d bytes", ep.ErrRange, n, off, dst, t.sizes[dst])
	}
	if dst == t.rank {
		return t.reg.Load().Write(off, bufs...)
	}
	// A peer that has left keeps its mapping in this process until
	// teardown, so a copy into it is harmless and needs no check.
	t.mapMu.RLock()
	if m := t.peers[dst].mapped; m != nil {
		if n >= streamMin {
			for _, b := range bufs {
				off += t.ks.StreamCopy(m[off:], b)
			}
		} else {
			for _, b := range bufs {
				off += copy(m[off:], b)
			}
		}
		t.mapMu.RUnlock()
		return nil
	}
	t.mapMu.RUnlock()
	if t.boot.PeerClosed(dst, 0) {
		return nil // the peer has left in an orderly way and needs nothing more
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.eps[dst] == 0 {
		return fmt.Errorf("%w: ucx rank %d", ep.ErrClosed, t.rank)
	}
	p := &t.peers[dst]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		src := unsafe.Pointer(&b[0])
		req, err := t.l.put(t.eps[dst], src, len(b), p.raddr+uint64(off), p.rkey)
		if err != nil {
			if t.boot.PeerClosed(dst, 2*time.Second) {
				return nil
			}
			err = fmt.Errorf("ucx rank %d: put of %d bytes to rank %d: %w", t.rank, len(b), dst, err)
			t.fail(err)
			return err
		}
		off += len(b)
		p.dirty = true
		if req != 0 {
			p.pin.Pin(src)
			p.pend = append(p.pend, pendingPut{req, b})
		}
	}
	if len(p.pend) > 4096 {
		t.reapLocked(p, false)
	}
	return nil
}

// reapLocked frees the pending puts to p that have completed (all of them
// after a flush); it reports the first failed one.
func (t *Transport) reapLocked(p *peerState, all bool) error {
	var first error
	keep := p.pend[:0]
	for _, q := range p.pend {
		st := t.l.status(q.req)
		if st == ucsInProgress && !all {
			keep = append(keep, q)
			continue
		}
		if st == ucsInProgress {
			t.orphans = append(t.orphans, q.req)
			continue
		}
		t.l.free(q.req)
		if st != ucsOK && first == nil {
			first = t.l.statusErr("ucp_put_nbx", st)
		}
	}
	clear(p.pend[len(keep):])
	p.pend = keep
	if len(p.pend) == 0 {
		p.pin.Unpin()
	}
	return first
}

// flush completes every put to dst at dst (ucp_ep_flush_nbx) and reaps
// them; it does nothing when no ucp_put_nbx to dst was started since the
// last flush (every put to dst was a copy into its mapped region).
func (t *Transport) flush(ctx context.Context, dst int) error {
	t.mu.Lock()
	if !t.peers[dst].dirty {
		t.mu.Unlock()
		return nil
	}
	if t.eps[dst] == 0 {
		t.mu.Unlock()
		return fmt.Errorf("%w: ucx rank %d", ep.ErrClosed, t.rank)
	}
	// Cleared before the flush starts: a put started while it runs sets
	// it again, and a flush that fails fails the transport.
	t.peers[dst].dirty = false
	req, err := t.l.flushEp(t.eps[dst])
	t.mu.Unlock()
	if err == nil {
		err = t.wait(ctx, req, "ucp_ep_flush_nbx", "flush to rank "+strconv.Itoa(dst))
	}
	t.mu.Lock()
	rerr := t.reapLocked(&t.peers[dst], true)
	t.mu.Unlock()
	if (err != nil || rerr != nil) && t.peerLeft(err, dst) {
		return nil
	}
	if err != nil {
		t.fail(err)
		return err
	}
	if err = rerr; err != nil {
		err = fmt.Errorf("ucx rank %d: put to rank %d: %w", t.rank, dst, err)
		t.fail(err)
	}
	return err
}

// Signal adds delta to the int64 at off of rank dst's region after every
// earlier Put to dst: it flushes the endpoint to dst when a ucp_put_nbx
// to dst is outstanding (ucp_ep_flush_nbx completes every earlier put at
// dst, with the data in dst's memory; a put into a mapped region is in
// place when Put returns), then sends a tagged message that dst's worker
// applies with Region.Add, waking its waiters.
func (t *Transport) Signal(ctx context.Context, dst, off int, delta int64) error {
	if err := t.check(dst, "Signal"); err != nil {
		return err
	}
	if off < 0 || off%8 != 0 || off+8 > t.sizes[dst] {
		return fmt.Errorf("%w: signal offset %d outside rank %d's region of %d bytes or not 8-aligned", ep.ErrRange, off, dst, t.sizes[dst])
	}
	if dst == t.rank {
		return t.reg.Load().Add(off, delta)
	}
	if t.boot.PeerClosed(dst, 0) {
		return nil
	}
	if err := t.flush(ctx, dst); err != nil {
		return err
	}
	msg := make([]byte, sigMsgLen)
	binary.LittleEndian.PutUint64(msg[0:], uint64(t.rank))
	binary.LittleEndian.PutUint64(msg[8:], uint64(off))
	binary.LittleEndian.PutUint64(msg[16:], uint64(delta))
	var pin runtime.Pinner
	pin.Pin(&msg[0])
	defer pin.Unpin()
	t.mu.Lock()
	if t.eps[dst] == 0 {
		t.mu.Unlock()
		return fmt.Errorf("%w: ucx rank %d", ep.ErrClosed, t.rank)
	}
	req, err := t.l.tagSend(t.eps[dst], unsafe.Pointer(&msg[0]), sigMsgLen, sigTag|uint64(t.rank))
	t.mu.Unlock()
	if err == nil {
		err = t.wait(ctx, req, "ucp_tag_send_nbx", "signal to rank "+strconv.Itoa(dst))
	}
	if err != nil && t.peerLeft(err, dst) {
		return nil
	}
	if err != nil {
		err = fmt.Errorf("ucx rank %d: signal to rank %d: %w", t.rank, dst, err)
		t.fail(err)
	}
	return err
}

// Barrier completes every put of this rank at its destination (a flush of
// every endpoint with a ucp_put_nbx outstanding), then returns when every
// rank has entered it.
func (t *Transport) Barrier(ctx context.Context) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.sizes != nil {
		for r := range t.eps {
			if r == t.rank {
				continue
			}
			if err := t.flush(ctx, r); err != nil {
				return err
			}
		}
	}
	if err := t.boot.Barrier(ctx); err != nil {
		return err
	}
	return t.usable()
}

// AllGather returns every rank's p (at most 1 MiB), indexed by rank, over
// the bootstrap.
func (t *Transport) AllGather(ctx context.Context, p []byte) ([][]byte, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	return t.boot.AllGather(ctx, p)
}

// Close flushes what this rank sent (briefly: a dead peer does not hold it
// up), closes the endpoints, releases UCX, closes the bootstrap and frees
// the region. Pending waits fail with ep.ErrClosed.
func (t *Transport) Close() error {
	t.failMu.Lock()
	if t.closed {
		t.failMu.Unlock()
		return nil
	}
	t.closed = true
	t.broken.Store(true)
	t.failMu.Unlock()
	if t.usableQuiet() && t.sizes != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		for r := range t.eps {
			if r != t.rank {
				t.mu.Lock()
				req, err := t.l.flushEp(t.eps[r])
				t.mu.Unlock()
				if err == nil {
					_ = t.waitClosing(ctx, req)
				}
			}
		}
		cancel()
	}
	// Say goodbye on the bootstrap before UCX goes: a peer whose puts or
	// signals to this rank fail from now on knows that it left in order.
	if t.cancelW != nil {
		t.cancelW()
	}
	err := t.boot.Close()
	t.teardown()
	if r := t.reg.Load(); r != nil {
		r.Abort(fmt.Errorf("%w: ucx rank %d", ep.ErrClosed, t.rank))
		r.Free()
	}
	return err
}

// waitClosing polls req until it completes or ctx ends, without failing
// the transport; it frees req or keeps it as an orphan.
func (t *Transport) waitClosing(ctx context.Context, req request) bool {
	if req == 0 {
		return true
	}
	for {
		t.mu.Lock()
		t.l.progress(t.worker)
		st := t.l.status(req)
		if st != ucsInProgress {
			t.l.free(req)
			t.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			t.orphans = append(t.orphans, req)
			t.mu.Unlock()
			return false
		}
		t.mu.Unlock()
		time.Sleep(10 * time.Microsecond)
	}
}

// teardown stops the goroutines and releases every UCX object, in the
// order UCX wants: requests, remote keys, endpoints (in flush mode, or
// forced after a failure), the mapping, the worker, the context. Objects whose requests
// never complete are left to the process's exit rather than freed under
// UCX's feet.
func (t *Transport) teardown() {
	defer unregisterErrTarget(t.id)
	close(t.stop)
	if t.cancelW != nil {
		t.cancelW()
	}
	t.done.Wait()
	if t.worker == 0 {
		if t.uctx != 0 {
			t.l.cleanup(t.uctx)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	clean := true
	t.mu.Lock()
	if t.sigReq != 0 {
		t.l.cancel(t.worker, t.sigReq)
		req := t.sigReq
		t.sigReq = 0
		t.mu.Unlock()
		clean = t.waitClosing(ctx, req) && clean
		t.mu.Lock()
	}
	t.mapMu.Lock()
	for r := range t.peers {
		t.peers[r].mapped = nil
	}
	t.mapMu.Unlock()
	var closing []request
	// A healthy rank closes its endpoints in flush mode, so that the
	// peers see an orderly disconnect; after a failure the close is forced.
	force := !t.usableQuiet()
	for r, e := range t.eps {
		if e == 0 {
			continue
		}
		p := &t.peers[r]
		if p.rkey != 0 {
			t.l.rkeyDestroy(p.rkey)
			p.rkey = 0
		}
		req, err := t.l.closeEp(e, force || t.epFailed[r].Load())
		if err == nil && req != 0 {
			closing = append(closing, req)
		}
		t.eps[r] = 0
	}
	t.mu.Unlock()
	for _, req := range closing {
		clean = t.waitClosing(ctx, req) && clean
	}
	t.mu.Lock()
	for r := range t.peers {
		p := &t.peers[r]
		for _, q := range p.pend {
			t.orphans = append(t.orphans, q.req)
		}
		p.pend = nil
	}
	orphans := t.orphans
	t.orphans = nil
	t.mu.Unlock()
	for _, req := range orphans {
		clean = t.waitClosing(ctx, req) && clean
	}
	if !clean {
		return // UCX still owns requests: leave its objects alone
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for r := range t.peers {
		t.peers[r].pin.Unpin()
	}
	t.pin.Unpin()
	if t.memh != 0 {
		_ = t.l.memUnmap(t.uctx, t.memh)
		t.memh = 0
	}
	t.l.destroyWorker(t.worker)
	t.worker = 0
	t.l.cleanup(t.uctx)
	t.uctx = 0
}

// usableQuiet reports whether the transport has not failed.
func (t *Transport) usableQuiet() bool {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	return t.failed == nil
}
