package sock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

// DefaultPort is the rendezvous port when MASTER_PORT is unset (DeepEP's
// tests/utils.init_dist default).
const DefaultPort = 8361

// Options configures Dial.
type Options struct {
	// Network is "tcp" or "unix".
	Network string
	// Rank and WorldSize place this process in the group (WorldSize in
	// 1..MaxWorldSize).
	Rank, WorldSize int
	// MasterAddr is rank 0's rendezvous host (tcp, default 127.0.0.1) or
	// socket path (unix; the ranks' own sockets are created next to it).
	MasterAddr string
	// MasterPort is rank 0's rendezvous port (tcp; default DefaultPort; 0
	// is not allowed).
	MasterPort int
	// Secret, when not empty, must be the same on every rank; connections
	// that cannot prove it are refused.
	Secret []byte
	// Timeout bounds bootstrap (rendezvous and connecting the mesh); zero
	// means 60 s.
	Timeout time.Duration
	// AllowRemote permits non-loopback TCP addresses.
	AllowRemote bool
}

// MaxWorldSize bounds Options.WorldSize: each rank keeps one connection
// (one file descriptor and one reader goroutine) per peer.
const MaxWorldSize = 1 << 16

// OptionsFromEnv reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and, if
// set, EP_SECRET, for the given network. Errors name the variable and wrap
// ep.ErrConfig.
func OptionsFromEnv(network string) (Options, error) {
	o := Options{Network: network, MasterAddr: os.Getenv("MASTER_ADDR"), MasterPort: DefaultPort}
	geti := func(name string, dst *int, required bool) error {
		v := os.Getenv(name)
		if v == "" {
			if required {
				return fmt.Errorf("%w: environment variable %s is not set", ep.ErrConfig, name)
			}
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%w: %s=%q is not an integer", ep.ErrConfig, name, v)
		}
		*dst = n
		return nil
	}
	if err := geti("RANK", &o.Rank, true); err != nil {
		return o, err
	}
	if err := geti("WORLD_SIZE", &o.WorldSize, true); err != nil {
		return o, err
	}
	if err := geti("MASTER_PORT", &o.MasterPort, false); err != nil {
		return o, err
	}
	if s := os.Getenv("EP_SECRET"); s != "" {
		o.Secret = []byte(s)
	}
	return o, nil
}

func (o *Options) validate() error {
	switch {
	case o.Network != "tcp" && o.Network != "unix":
		return fmt.Errorf("%w: Options.Network = %q, want tcp or unix", ep.ErrConfig, o.Network)
	case o.WorldSize < 1:
		return fmt.Errorf("%w: Options.WorldSize = %d, want ≥ 1", ep.ErrConfig, o.WorldSize)
	case o.WorldSize > MaxWorldSize:
		return fmt.Errorf("%w: Options.WorldSize = %d, want ≤ MaxWorldSize (%d)", ep.ErrConfig, o.WorldSize, MaxWorldSize)
	case o.Rank < 0 || o.Rank >= o.WorldSize:
		return fmt.Errorf("%w: Options.Rank = %d outside [0, %d)", ep.ErrConfig, o.Rank, o.WorldSize)
	case o.Network == "unix" && o.MasterAddr == "":
		return fmt.Errorf("%w: Options.MasterAddr (the rendezvous socket path) is empty", ep.ErrConfig)
	case o.Network == "tcp" && (o.MasterPort <= 0 || o.MasterPort > 65535):
		return fmt.Errorf("%w: Options.MasterPort = %d outside [1, 65535]", ep.ErrConfig, o.MasterPort)
	}
	if o.Network == "tcp" {
		if o.MasterAddr == "" {
			o.MasterAddr = "127.0.0.1"
		}
		if !o.AllowRemote {
			ips, err := net.LookupIP(o.MasterAddr)
			if err != nil {
				return fmt.Errorf("%w: Options.MasterAddr %q: %w", ep.ErrConfig, o.MasterAddr, err)
			}
			for _, ip := range ips {
				if !ip.IsLoopback() {
					return fmt.Errorf("%w: Options.MasterAddr %q is not loopback (set AllowRemote)", ep.ErrConfig, o.MasterAddr)
				}
			}
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	return nil
}

// Transport is one rank's endpoint; it implements ep.Transport.
type Transport struct {
	opts    Options
	rank    int
	world   int
	session uint64
	ln      net.Listener
	peers   []*peer // nil at this rank's index
	reg     atomic.Pointer[ep.Region]
	msgs    atomic.Pointer[msgBox] // the OnMsg handler
	sizes   []int                  // every rank's region size, after Register
	wg      sync.WaitGroup
	sockDir string // unix: socket file to remove

	mu     sync.Mutex
	ch     chan struct{} // broadcast on any barrier/gather/failure
	failed error
	closed bool
	barSeq uint64
}

type peer struct {
	t    *Transport
	rank int
	c    net.Conn

	wmu   sync.Mutex
	pend  net.Buffers
	hdrs  []byte // header storage for pending puts
	nPend int

	done chan struct{} // closed when the reader exits

	// guarded by t.mu
	bar     uint64
	gather  [][]byte
	byeSeen bool
}

// Dial bootstraps this rank's transport: rendezvous through rank 0, then a
// connected mesh. It is a collective over processes.
func Dial(ctx context.Context, opts Options) (*Transport, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	t := &Transport{opts: opts, rank: opts.Rank, world: opts.WorldSize, peers: make([]*peer, opts.WorldSize), ch: make(chan struct{})}
	if err := t.bootstrap(ctx, deadline); err != nil {
		t.shutdown()
		return nil, err
	}
	for _, p := range t.peers {
		if p != nil {
			t.wg.Add(1)
			go p.readLoop()
		}
	}
	return t, nil
}

func (t *Transport) listenData() (net.Listener, error) {
	if t.opts.Network == "tcp" {
		host := "127.0.0.1"
		if t.opts.AllowRemote {
			host = ""
		}
		return net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	path := fmt.Sprintf("%s.rank-%d", t.opts.MasterAddr, t.rank)
	_ = os.Remove(path)
	t.sockDir = path
	return net.Listen("unix", path)
}

func (t *Transport) masterAddr() string {
	if t.opts.Network == "tcp" {
		return net.JoinHostPort(t.opts.MasterAddr, strconv.Itoa(t.opts.MasterPort))
	}
	return t.opts.MasterAddr
}

func dialRetry(ctx context.Context, network, addr string, deadline time.Time) (net.Conn, error) {
	var d net.Dialer
	for {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		c, err := d.DialContext(dctx, network, addr)
		cancel()
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%w: dial %s %s: %w", ep.ErrTransport, network, addr, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: dial %s: %w", ep.ErrTransport, addr, ctx.Err())
		}
	}
}

func (t *Transport) bootstrap(ctx context.Context, deadline time.Time) error {
	ln, err := t.listenData()
	if err != nil {
		return fmt.Errorf("%w: listen: %w", ep.ErrTransport, err)
	}
	t.ln = ln
	addrs := make([]string, t.world)
	addrs[t.rank] = ln.Addr().String()
	me := hello{kind: 0, rank: uint32(t.rank), world: uint32(t.world)}
	if t.rank == 0 {
		t.session = rand.Uint64() | 1
		if t.world > 1 {
			if err := t.rendezvousMaster(ctx, addrs, deadline); err != nil {
				return err
			}
		}
	} else {
		c, err := dialRetry(ctx, t.opts.Network, t.masterAddr(), deadline)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := handshake(c, true, me, t.opts.Secret, deadline); err != nil {
			return err
		}
		_ = c.SetDeadline(deadline)
		if err := writeString(c, addrs[t.rank]); err != nil {
			return err
		}
		var sess [8]byte
		if _, err := readFull(c, sess[:]); err != nil {
			return err
		}
		t.session = binary.LittleEndian.Uint64(sess[:])
		for i := range addrs {
			s, err := readString(c)
			if err != nil {
				return err
			}
			addrs[i] = s
		}
	}
	// Mesh: dial every lower rank, accept every higher one.
	me.kind, me.session = 1, t.session
	errc := make(chan error, 1)
	go func() { errc <- t.acceptPeers(me, deadline) }()
	for j := 0; j < t.rank; j++ {
		c, err := dialRetry(ctx, t.opts.Network, addrs[j], deadline)
		if err != nil {
			_ = t.ln.Close()
			<-errc
			return err
		}
		ph, err := handshake(c, true, me, t.opts.Secret, deadline)
		if err == nil && (int(ph.rank) != j || ph.session != t.session || int(ph.world) != t.world) {
			err = fmt.Errorf("%w: %s answered as rank %d of %d (session %x), want rank %d of %d (session %x)", ErrProtocol, addrs[j], ph.rank, ph.world, ph.session, j, t.world, t.session)
		}
		if err != nil {
			c.Close()
			_ = t.ln.Close()
			<-errc
			return err
		}
		t.peers[j] = &peer{t: t, rank: j, c: c, done: make(chan struct{})}
	}
	return <-errc
}

func (t *Transport) rendezvousMaster(ctx context.Context, addrs []string, deadline time.Time) error {
	rl, err := net.Listen(t.opts.Network, t.masterAddr())
	if err != nil {
		return fmt.Errorf("%w: listen on master address %s: %w", ep.ErrTransport, t.masterAddr(), err)
	}
	defer rl.Close()
	if t.opts.Network == "unix" {
		defer os.Remove(t.masterAddr())
	}
	stop := context.AfterFunc(ctx, func() { rl.Close() })
	defer stop()
	setDeadline(rl, deadline)
	conns := make([]net.Conn, t.world)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	me := hello{kind: 0, rank: 0, world: uint32(t.world)}
	for got := 1; got < t.world; {
		c, err := rl.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err() // the listener was closed because ctx ended
			}
			return fmt.Errorf("%w: rendezvous: %d of %d ranks joined: %w", ep.ErrTransport, got, t.world, err)
		}
		ph, err := handshake(c, false, me, t.opts.Secret, deadline)
		r := int(ph.rank)
		if err == nil && (ph.kind != 0 || int(ph.world) != t.world || r <= 0 || r >= t.world || conns[r] != nil) {
			err = fmt.Errorf("%w: rendezvous hello from rank %d of %d", ErrProtocol, r, ph.world)
		}
		if err != nil {
			c.Close() // a stray or hostile connection: drop it and keep waiting
			continue
		}
		_ = c.SetDeadline(deadline)
		s, err := readString(c)
		if err != nil {
			c.Close()
			continue
		}
		addrs[r] = s
		conns[r] = c
		got++
	}
	var sess [8]byte
	binary.LittleEndian.PutUint64(sess[:], t.session)
	for _, c := range conns[1:] {
		if _, err := c.Write(sess[:]); err != nil {
			return fmt.Errorf("%w: rendezvous reply: %w", ep.ErrTransport, err)
		}
		for _, a := range addrs {
			if err := writeString(c, a); err != nil {
				return err
			}
		}
	}
	return nil
}

func setDeadline(l net.Listener, d time.Time) {
	if dl, ok := l.(interface{ SetDeadline(time.Time) error }); ok {
		_ = dl.SetDeadline(d)
	}
}

func (t *Transport) acceptPeers(me hello, deadline time.Time) error {
	setDeadline(t.ln, deadline)
	defer setDeadline(t.ln, time.Time{})
	for need := t.world - 1 - t.rank; need > 0; {
		c, err := t.ln.Accept()
		if err != nil {
			return fmt.Errorf("%w: waiting for %d higher ranks to connect: %w", ep.ErrTransport, need, err)
		}
		ph, err := handshake(c, false, me, t.opts.Secret, deadline)
		r := int(ph.rank)
		if err == nil && (ph.kind != 1 || ph.session != t.session || int(ph.world) != t.world || r <= t.rank || r >= t.world || t.peers[r] != nil) {
			err = ErrProtocol
		}
		if err != nil {
			c.Close() // hostile or stray: drop and keep waiting
			continue
		}
		t.peers[r] = &peer{t: t, rank: r, c: c, done: make(chan struct{})}
		need--
	}
	return nil
}

func writeString(c net.Conn, s string) error {
	p := make([]byte, 2+len(s))
	binary.LittleEndian.PutUint16(p, uint16(len(s)))
	copy(p[2:], s)
	if _, err := c.Write(p); err != nil {
		return fmt.Errorf("%w: %w", ep.ErrTransport, err)
	}
	return nil
}

func readFull(c net.Conn, p []byte) (int, error) {
	n, err := ioReadFull(c, p)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ep.ErrTransport, err)
	}
	return n, nil
}

func readString(c net.Conn) (string, error) {
	var l [2]byte
	if _, err := readFull(c, l[:]); err != nil {
		return "", err
	}
	p := make([]byte, binary.LittleEndian.Uint16(l[:]))
	if _, err := readFull(c, p); err != nil {
		return "", err
	}
	return string(p), nil
}

// Rank returns this rank's index.
func (t *Transport) Rank() int { return t.rank }

// Size returns the number of ranks.
func (t *Transport) Size() int { return t.world }

func (t *Transport) broadcastLocked() {
	close(t.ch)
	t.ch = make(chan struct{})
}

// waitFor waits until cond (evaluated under t.mu) holds, the transport
// fails, or ctx ends.
func (t *Transport) waitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		t.mu.Lock()
		if cond() {
			t.mu.Unlock()
			return nil
		}
		if t.failed != nil {
			err := t.failed
			t.mu.Unlock()
			return err
		}
		ch := t.ch
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: rank %d: %s: %w", ep.ErrTransport, t.rank, what, ctx.Err())
		}
	}
}

func (t *Transport) fail(err error) {
	t.mu.Lock()
	if t.failed == nil {
		t.failed = err
		t.broadcastLocked()
	}
	t.mu.Unlock()
	if r := t.reg.Load(); r != nil {
		r.Abort(err)
	}
}

func (p *peer) readLoop() {
	t := p.t
	defer t.wg.Done()
	defer close(p.done)
	err := readFrames(p.c, p)
	t.mu.Lock()
	closed, bye := t.closed, p.byeSeen
	t.mu.Unlock()
	if closed || bye {
		// An orderly goodbye: the peer has sent everything it will send.
		// Later waits on it run into their deadlines; sends to it are dropped.
		if h := p.msgHandler(); h != nil {
			var end error
			if closed {
				end = fmt.Errorf("%w: sock rank %d", ep.ErrClosed, t.rank)
			}
			h.MsgEnd(p.rank, end)
		}
		return
	}
	switch {
	case errors.Is(err, ErrProtocol):
		err = fmt.Errorf("rank %d: from peer rank %d: %w", t.rank, p.rank, err)
	default:
		err = fmt.Errorf("%w: rank %d: peer rank %d failed: %w", ep.ErrTransport, t.rank, p.rank, err)
	}
	p.c.Close()
	t.fail(err)
	if h := p.msgHandler(); h != nil {
		h.MsgEnd(p.rank, err)
	}
}

func (p *peer) region() *ep.Region { return p.t.reg.Load() }

func (p *peer) from() int { return p.rank }

func (p *peer) msgHandler() ep.MsgHandler {
	if b := p.t.msgs.Load(); b != nil {
		return b.h
	}
	return nil
}

// msgBox holds the MsgHandler (an interface value) for atomic.Pointer.
type msgBox struct{ h ep.MsgHandler }

// OnMsg implements ep.Messenger: h receives this rank's messages from now
// on. It must be called once, before a peer sends a message here.
func (t *Transport) OnMsg(h ep.MsgHandler) error {
	if h == nil {
		return fmt.Errorf("%w: sock OnMsg: nil handler", ep.ErrConfig)
	}
	if !t.msgs.CompareAndSwap(nil, &msgBox{h}) {
		return fmt.Errorf("%w: sock OnMsg called twice", ep.ErrConfig)
	}
	return nil
}

// SendMsg implements ep.Messenger: meta and payload leave in one frame, in
// one writev from the caller's buffers (no copy), behind the earlier puts
// and signals to dst; the receiver's reader reads the payload straight into
// the buffer its MsgHandler picks. A message to this rank itself is copied
// into the local handler's buffer.
func (t *Transport) SendMsg(ctx context.Context, dst int, meta []byte, payload ...[]byte) error {
	p, err := t.peer(dst)
	if err != nil {
		return err
	}
	n := 0
	for _, b := range payload {
		n += len(b)
	}
	if len(meta) > ep.MaxMsgMeta || n > 1<<32-1-len(meta) {
		return fmt.Errorf("%w: message of %d meta and %d payload bytes (at most %d and %d)", ep.ErrRange, len(meta), n, ep.MaxMsgMeta, 1<<32-1-ep.MaxMsgMeta)
	}
	if p == nil {
		b := t.msgs.Load()
		if b == nil {
			return fmt.Errorf("%w: sock SendMsg to this rank before OnMsg", ep.ErrConfig)
		}
		buf, err := b.h.MsgBuffer(t.rank, meta, n)
		if err != nil {
			return err
		}
		if len(buf) != n {
			return fmt.Errorf("%w: message handler gave %d bytes for %d", ep.ErrConfig, len(buf), n)
		}
		off := 0
		for _, s := range payload {
			off += copy(buf[off:], s)
		}
		b.h.Msg(t.rank, meta, buf)
		return nil
	}
	if p.gone() {
		return fmt.Errorf("%w: sock rank %d: peer rank %d has closed", ep.ErrClosed, t.rank, dst)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.appendFrame(frame{op: opMsg, len: uint32(len(meta) + n), off: uint64(len(meta))}, append([][]byte{meta}, payload...)...)
	return p.flushLocked(ctx)
}

func (p *peer) barrier(seq uint64) {
	t := p.t
	t.mu.Lock()
	if seq > p.bar {
		p.bar = seq
	}
	t.broadcastLocked()
	t.mu.Unlock()
}

func (p *peer) gathered(b []byte) {
	t := p.t
	t.mu.Lock()
	p.gather = append(p.gather, b)
	t.broadcastLocked()
	t.mu.Unlock()
}

// saidBye reports whether the peer has closed in an orderly way, waiting
// briefly for its reader to drain what is in flight.
func (p *peer) saidBye() bool {
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return p.byeSeen
}

// PeerClosed reports whether rank r has closed its transport in an orderly
// way (its Close said goodbye), waiting up to wait for the frames still in
// flight from it. A transport layered on this one (ep/ucx) uses it to drop
// what it still sends to a peer that has left, as Put and Signal here do.
func (t *Transport) PeerClosed(r int, wait time.Duration) bool {
	if r < 0 || r >= t.world || t.peers[r] == nil {
		return false
	}
	p := t.peers[r]
	if wait > 0 {
		select {
		case <-p.done:
		case <-time.After(wait):
		}
	}
	return p.gone()
}

func (p *peer) gone() bool {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return p.byeSeen
}

func (p *peer) bye() {
	t := p.t
	t.mu.Lock()
	p.byeSeen = true
	t.mu.Unlock()
}

func (t *Transport) usable() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("%w: sock rank %d", ep.ErrClosed, t.rank)
	}
	return t.failed
}

func (t *Transport) peer(dst int) (*peer, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if dst < 0 || dst >= t.world {
		return nil, fmt.Errorf("%w: destination rank %d outside [0, %d)", ep.ErrRange, dst, t.world)
	}
	return t.peers[dst], nil
}

// Register allocates this rank's region and exchanges region sizes, so that
// puts are bounds-checked at the sender as well as at the receiver.
func (t *Transport) Register(ctx context.Context, size int) (*ep.Region, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if size < 0 || size%8 != 0 {
		return nil, fmt.Errorf("%w: sock Register: size %d is not a non-negative multiple of 8", ep.ErrConfig, size)
	}
	if t.reg.Load() != nil {
		return nil, fmt.Errorf("%w: sock Register called twice", ep.ErrConfig)
	}
	r := ep.NewRegion(size)
	t.reg.Store(r)
	var p [8]byte
	binary.LittleEndian.PutUint64(p[:], uint64(r.Len()))
	all, err := t.AllGather(ctx, p[:])
	if err != nil {
		return nil, err
	}
	t.sizes = make([]int, t.world)
	for i, b := range all {
		if len(b) != 8 {
			return nil, fmt.Errorf("%w: rank %d sent a bad region size", ErrProtocol, i)
		}
		t.sizes[i] = int(binary.LittleEndian.Uint64(b))
	}
	return r, nil
}

func (p *peer) writeDeadline(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Time{}
	}
	_ = p.c.SetWriteDeadline(d)
}

// flushLocked writes the pending frames with writev.
func (p *peer) flushLocked(ctx context.Context) error {
	if len(p.pend) == 0 {
		return nil
	}
	p.writeDeadline(ctx)
	_, err := p.pend.WriteTo(p.c)
	p.pend = p.pend[:0]
	p.hdrs = p.hdrs[:0]
	p.nPend = 0
	if err != nil && p.saidBye() {
		return nil // the peer closed in an orderly way and needs nothing more
	}
	if err != nil {
		err = fmt.Errorf("%w: rank %d: write to rank %d: %w", ep.ErrTransport, p.t.rank, p.rank, err)
		p.t.fail(err)
	}
	return err
}

func (p *peer) appendFrame(f frame, payload ...[]byte) {
	if cap(p.hdrs)-len(p.hdrs) < frameHeader {
		// the headers of pending frames must stay where they are: start a
		// new block instead of growing the old one
		p.hdrs = make([]byte, 0, 64*frameHeader)
	}
	h := f.encode(p.hdrs[len(p.hdrs) : len(p.hdrs)+frameHeader])
	p.hdrs = p.hdrs[:len(p.hdrs)+frameHeader]
	p.pend = append(p.pend, h)
	for _, b := range payload {
		if len(b) > 0 {
			p.pend = append(p.pend, b)
		}
	}
}

// Put queues bufs for rank dst's region at off; the bytes leave with the
// next Signal (or barrier) to dst, so bufs must stay unmodified until then.
func (t *Transport) Put(ctx context.Context, dst, off int, bufs ...[]byte) error {
	p, err := t.peer(dst)
	if err != nil {
		return err
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if t.sizes == nil {
		return fmt.Errorf("%w: Put before Register", ep.ErrConfig)
	}
	if off < 0 || n < 0 || off > t.sizes[dst] || n > t.sizes[dst]-off || n > 1<<32-1 {
		return fmt.Errorf("%w: put of %d bytes at offset %d outside rank %d's region of %d bytes", ep.ErrRange, n, off, dst, t.sizes[dst])
	}
	if p == nil {
		return t.reg.Load().Write(off, bufs...)
	}
	if p.gone() {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.appendFrame(frame{op: opPut, len: uint32(n), off: uint64(off)}, bufs...)
	p.nPend += n
	if p.nPend > 64<<20 {
		return p.flushLocked(ctx)
	}
	return nil
}

// Signal adds delta to the counter at off in rank dst's region after the
// earlier puts to dst, flushing them.
func (t *Transport) Signal(ctx context.Context, dst, off int, delta int64) error {
	p, err := t.peer(dst)
	if err != nil {
		return err
	}
	if t.sizes == nil {
		return fmt.Errorf("%w: Signal before Register", ep.ErrConfig)
	}
	if off < 0 || off%8 != 0 || off+8 > t.sizes[dst] {
		return fmt.Errorf("%w: signal offset %d outside rank %d's region or not 8-aligned", ep.ErrRange, off, dst)
	}
	if p == nil {
		return t.reg.Load().Add(off, delta)
	}
	if p.gone() {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.appendFrame(frame{op: opSignal, off: uint64(off), arg: uint64(delta)})
	return p.flushLocked(ctx)
}

func (t *Transport) sendAll(ctx context.Context, f frame, payload []byte) error {
	for _, p := range t.peers {
		if p == nil || p.gone() {
			continue
		}
		p.wmu.Lock()
		p.appendFrame(f, payload)
		err := p.flushLocked(ctx)
		p.wmu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Barrier returns when every rank has entered it.
func (t *Transport) Barrier(ctx context.Context) error {
	if err := t.usable(); err != nil {
		return err
	}
	t.mu.Lock()
	t.barSeq++
	seq := t.barSeq
	t.mu.Unlock()
	if err := t.sendAll(ctx, frame{op: opBarrier, arg: seq}, nil); err != nil {
		return err
	}
	return t.waitFor(ctx, "barrier", func() bool {
		for _, p := range t.peers {
			if p != nil && p.bar < seq {
				return false
			}
		}
		return true
	})
}

// AllGather returns every rank's p (at most 1 MiB), indexed by rank.
func (t *Transport) AllGather(ctx context.Context, p []byte) ([][]byte, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if len(p) > maxGatherBytes {
		return nil, fmt.Errorf("%w: AllGather of %d bytes, at most %d", ep.ErrRange, len(p), maxGatherBytes)
	}
	if err := t.sendAll(ctx, frame{op: opAllGather, len: uint32(len(p))}, p); err != nil {
		return nil, err
	}
	err := t.waitFor(ctx, "all-gather", func() bool {
		for _, q := range t.peers {
			if q != nil && len(q.gather) == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, t.world)
	t.mu.Lock()
	for i, q := range t.peers {
		if q == nil {
			out[i] = append([]byte(nil), p...)
			continue
		}
		out[i] = q.gather[0]
		q.gather = q.gather[1:]
	}
	t.mu.Unlock()
	return out, nil
}

// Close says goodbye to the peers, closes the connections and the
// listener, waits for the reader goroutines and frees the region.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.broadcastLocked()
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, p := range t.peers {
		if p != nil {
			p.wmu.Lock()
			p.appendFrame(frame{op: opBye})
			_ = p.flushLocked(ctx)
			p.wmu.Unlock()
		}
	}
	t.shutdown()
	if r := t.reg.Load(); r != nil {
		r.Abort(fmt.Errorf("%w: sock rank %d", ep.ErrClosed, t.rank))
		r.Free()
	}
	return nil
}

func (t *Transport) shutdown() {
	if t.ln != nil {
		t.ln.Close()
	}
	for _, p := range t.peers {
		if p != nil {
			p.c.Close()
		}
	}
	t.wg.Wait()
	if t.sockDir != "" {
		_ = os.Remove(t.sockDir)
	}
}

var _ ep.Messenger = (*Transport)(nil)
