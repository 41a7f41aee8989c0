package sock

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

// Frame operations. Every frame is a 24-byte header — op u8, 3 zero bytes,
// len u32, off u64, arg u64 (little-endian) — followed by len payload bytes
// for opPut and opAllGather.
const (
	opPut       = 1 // write payload at off of the receiver's region
	opSignal    = 2 // add arg to the int64 at off, after earlier puts
	opBarrier   = 3 // arg = barrier sequence number
	opAllGather = 4 // payload = this rank's contribution
	opBye       = 5 // orderly close
	opMsg       = 6 // a two-sided message: off = meta bytes, then meta and payload (len in all)
)

const (
	frameHeader     = 24
	maxGatherBytes  = 1 << 20
	handshakeBytes  = 96
	protocolVersion = 1
)

var magic = [4]byte{'F', 'F', 'E', 'P'}

// ErrProtocol reports a malformed or hostile frame or handshake; the
// connection is dropped. It wraps ep.ErrTransport.
var ErrProtocol = fmt.Errorf("%w: protocol violation", ep.ErrTransport)

type frame struct {
	op  uint8
	len uint32
	off uint64
	arg uint64
}

func (f *frame) encode(p []byte) []byte {
	p = p[:frameHeader]
	p[0], p[1], p[2], p[3] = f.op, 0, 0, 0
	binary.LittleEndian.PutUint32(p[4:], f.len)
	binary.LittleEndian.PutUint64(p[8:], f.off)
	binary.LittleEndian.PutUint64(p[16:], f.arg)
	return p
}

func decodeFrame(p []byte) (frame, error) {
	f := frame{op: p[0], len: binary.LittleEndian.Uint32(p[4:]), off: binary.LittleEndian.Uint64(p[8:]), arg: binary.LittleEndian.Uint64(p[16:])}
	if p[1]|p[2]|p[3] != 0 {
		return f, fmt.Errorf("%w: reserved header bytes set", ErrProtocol)
	}
	switch f.op {
	case opPut:
	case opSignal, opBarrier, opBye:
		if f.len != 0 {
			return f, fmt.Errorf("%w: op %d carries %d payload bytes", ErrProtocol, f.op, f.len)
		}
	case opAllGather:
		if f.len > maxGatherBytes {
			return f, fmt.Errorf("%w: all-gather payload of %d bytes", ErrProtocol, f.len)
		}
	case opMsg:
		if f.off > ep.MaxMsgMeta || f.off > uint64(f.len) || f.arg != 0 {
			return f, fmt.Errorf("%w: message with %d meta bytes of %d", ErrProtocol, f.off, f.len)
		}
	default:
		return f, fmt.Errorf("%w: unknown op %d", ErrProtocol, f.op)
	}
	return f, nil
}

// sink receives the decoded effects of a peer's frames.
type sink interface {
	region() *ep.Region // nil before Register
	barrier(seq uint64)
	gathered(p []byte)
	bye()
	msgHandler() ep.MsgHandler // nil before OnMsg
	from() int                 // the peer's rank
}

// readFrames decodes frames from r and applies them to s until an error.
// A put is bounds-checked against the region before any payload byte is
// read, and then read straight into the region: nothing outside it can be
// written.
func readFrames(r io.Reader, s sink) error {
	var hdr [frameHeader]byte
	var meta []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		f, err := decodeFrame(hdr[:])
		if err != nil {
			return err
		}
		switch f.op {
		case opPut:
			reg := s.region()
			if reg == nil {
				return fmt.Errorf("%w: put before the region was registered", ErrProtocol)
			}
			if f.off > uint64(reg.Len()) {
				return fmt.Errorf("%w: put at offset %d outside region of %d bytes", ErrProtocol, f.off, reg.Len())
			}
			if err := reg.CheckPut(int(f.off), int(f.len)); err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if _, err := io.ReadFull(r, reg.Bytes()[f.off:f.off+uint64(f.len)]); err != nil {
				return err
			}
		case opSignal:
			reg := s.region()
			if reg == nil {
				return fmt.Errorf("%w: signal before the region was registered", ErrProtocol)
			}
			if f.off > uint64(reg.Len()) {
				return fmt.Errorf("%w: signal at offset %d outside region", ErrProtocol, f.off)
			}
			if err := reg.Add(int(f.off), int64(f.arg)); err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
		case opBarrier:
			s.barrier(f.arg)
		case opAllGather:
			p := make([]byte, f.len)
			if _, err := io.ReadFull(r, p); err != nil {
				return err
			}
			s.gathered(p)
		case opBye:
			s.bye()
		case opMsg:
			h := s.msgHandler()
			if h == nil {
				return fmt.Errorf("%w: message before OnMsg", ErrProtocol)
			}
			if meta == nil {
				meta = make([]byte, ep.MaxMsgMeta)
			}
			m := meta[:f.off]
			if _, err := io.ReadFull(r, m); err != nil {
				return err
			}
			n := int(f.len) - len(m)
			buf, err := h.MsgBuffer(s.from(), m, n)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if len(buf) != n {
				return fmt.Errorf("%w: message handler gave %d bytes for %d", ErrProtocol, len(buf), n)
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				return err
			}
			h.Msg(s.from(), m, buf)
		}
	}
}

// hello is the handshake message: magic, version, kind (0 rendezvous,
// 1 peer), rank, world, session, nonce, mac.
type hello struct {
	kind    uint16
	rank    uint32
	world   uint32
	session uint64
	nonce   [32]byte
	mac     [32]byte
}

func (h *hello) encode() []byte {
	p := make([]byte, handshakeBytes)
	copy(p, magic[:])
	binary.LittleEndian.PutUint16(p[4:], protocolVersion)
	binary.LittleEndian.PutUint16(p[6:], h.kind)
	binary.LittleEndian.PutUint32(p[8:], h.rank)
	binary.LittleEndian.PutUint32(p[12:], h.world)
	binary.LittleEndian.PutUint64(p[16:], h.session)
	copy(p[24:56], h.nonce[:])
	copy(p[56:88], h.mac[:])
	return p
}

func decodeHello(p []byte) (hello, error) {
	var h hello
	if [4]byte(p[:4]) != magic {
		return h, fmt.Errorf("%w: bad magic %q", ErrProtocol, p[:4])
	}
	if v := binary.LittleEndian.Uint16(p[4:]); v != protocolVersion {
		return h, fmt.Errorf("%w: protocol version %d, want %d", ErrProtocol, v, protocolVersion)
	}
	h.kind = binary.LittleEndian.Uint16(p[6:])
	h.rank = binary.LittleEndian.Uint32(p[8:])
	h.world = binary.LittleEndian.Uint32(p[12:])
	h.session = binary.LittleEndian.Uint64(p[16:])
	copy(h.nonce[:], p[24:56])
	copy(h.mac[:], p[56:88])
	return h, nil
}

func mac(secret []byte, role byte, a, b [32]byte, rank, peer uint32, session uint64) [32]byte {
	m := hmac.New(sha256.New, secret)
	var buf [1 + 64 + 16]byte
	buf[0] = role
	copy(buf[1:], a[:])
	copy(buf[33:], b[:])
	binary.LittleEndian.PutUint32(buf[65:], rank)
	binary.LittleEndian.PutUint32(buf[69:], peer)
	binary.LittleEndian.PutUint64(buf[73:], session)
	m.Write(buf[:])
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

var errAuth = fmt.Errorf("%w: authentication failed (shared secret differs)", ErrProtocol)

// handshake authenticates a fresh connection both ways with an HMAC over
// both sides' nonces: the dialer sends its hello, the acceptor answers with
// its own hello whose mac proves the secret, the dialer then proves it. It
// returns the peer's hello.
func handshake(c net.Conn, dialer bool, me hello, secret []byte, deadline time.Time) (hello, error) {
	_ = c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	if _, err := rand.Read(me.nonce[:]); err != nil {
		return hello{}, err
	}
	buf := make([]byte, handshakeBytes)
	read := func() (hello, error) {
		if _, err := io.ReadFull(c, buf); err != nil {
			return hello{}, fmt.Errorf("%w: handshake: %w", ep.ErrTransport, err)
		}
		return decodeHello(buf)
	}
	if dialer {
		if _, err := c.Write(me.encode()); err != nil {
			return hello{}, fmt.Errorf("%w: handshake: %w", ep.ErrTransport, err)
		}
		peer, err := read()
		if err != nil {
			return peer, err
		}
		want := mac(secret, 'B', me.nonce, peer.nonce, peer.rank, me.rank, peer.session)
		if !hmac.Equal(peer.mac[:], want[:]) {
			return peer, errAuth
		}
		me.mac = mac(secret, 'A', peer.nonce, me.nonce, me.rank, peer.rank, me.session)
		if _, err := c.Write(me.encode()); err != nil {
			return hello{}, fmt.Errorf("%w: handshake: %w", ep.ErrTransport, err)
		}
		return peer, nil
	}
	peer, err := read()
	if err != nil {
		return peer, err
	}
	me.mac = mac(secret, 'B', peer.nonce, me.nonce, me.rank, peer.rank, me.session)
	if _, err := c.Write(me.encode()); err != nil {
		return hello{}, fmt.Errorf("%w: handshake: %w", ep.ErrTransport, err)
	}
	fin, err := read()
	if err != nil {
		return peer, err
	}
	want := mac(secret, 'A', me.nonce, peer.nonce, peer.rank, me.rank, me.session)
	if !hmac.Equal(fin.mac[:], want[:]) || fin.nonce != peer.nonce {
		return peer, errAuth
	}
	return peer, nil
}

func ioReadFull(r io.Reader, p []byte) (int, error) { return io.ReadFull(r, p) }
