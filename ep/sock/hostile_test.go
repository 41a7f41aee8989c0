package sock

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

const regionSize = 4096

type rank0 struct {
	t   *Transport
	reg *ep.Region
	err error
}

// impersonate starts a real rank 0 of a 2-rank TCP group and plays rank 1
// by hand: rendezvous, mesh handshake, the region-size all-gather. before,
// if not nil, runs on a first, throw-away rendezvous connection (to send
// garbage that rank 0 must drop). It returns rank 0 once registered and the
// peer connection.
func impersonate(t *testing.T, secret []byte, before func(c net.Conn)) (*rank0, net.Conn) {
	t.Helper()
	addr, port := masterFor(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	done := make(chan *rank0, 1)
	go func() {
		r := &rank0{}
		r.t, r.err = Dial(ctx, Options{Network: "tcp", Rank: 0, WorldSize: 2, MasterAddr: addr, MasterPort: port, Secret: []byte("right")})
		if r.err == nil {
			r.reg, r.err = r.t.Register(ctx, regionSize)
		}
		done <- r
	}()
	master := net.JoinHostPort(addr, strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	if before != nil {
		c, err := dialRetry(ctx, "tcp", master, deadline)
		if err != nil {
			t.Fatal(err)
		}
		before(c)
		c.Close()
	}
	c, err := dialRetry(ctx, "tcp", master, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := handshake(c, true, hello{kind: 0, rank: 1, world: 2}, secret, deadline); err != nil {
		t.Fatalf("rendezvous handshake: %v", err)
	}
	if err := writeString(c, "unused"); err != nil {
		t.Fatal(err)
	}
	var sess [8]byte
	if _, err := io.ReadFull(c, sess[:]); err != nil {
		t.Fatal(err)
	}
	a0, _ := readString(c)
	_, _ = readString(c)
	pc, err := dialRetry(ctx, "tcp", a0, deadline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(pc, true, hello{kind: 1, rank: 1, world: 2, session: binary.LittleEndian.Uint64(sess[:])}, secret, deadline); err != nil {
		t.Fatalf("mesh handshake: %v", err)
	}
	// Rank 0's Register all-gathers region sizes.
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], regionSize)
	f := frame{op: opAllGather, len: 8}
	if _, err := pc.Write(append(f.encode(make([]byte, frameHeader)), size[:]...)); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("rank 0: %v", r.err)
	}
	t.Cleanup(func() { r.t.Close(); pc.Close() })
	return r, pc
}

func rawFrame(op byte, reserved byte, n uint32, off, arg uint64, payload []byte) []byte {
	p := make([]byte, frameHeader)
	p[0], p[1] = op, reserved
	binary.LittleEndian.PutUint32(p[4:], n)
	binary.LittleEndian.PutUint64(p[8:], off)
	binary.LittleEndian.PutUint64(p[16:], arg)
	return append(p, payload...)
}

// TestHostileFrames sends malformed frames from an authenticated peer: the
// connection must drop, rank 0's waits must fail with ErrProtocol, and
// nothing may be written (outside the region or in it).
func TestHostileFrames(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
	}{
		{"put-past-end", rawFrame(opPut, 0, 8, regionSize, 0, make([]byte, 8))},
		{"put-too-long", rawFrame(opPut, 0, regionSize+1, 0, 0, bytes.Repeat([]byte{1}, 64))},
		{"put-huge-offset", rawFrame(opPut, 0, 8, 1<<63, 0, bytes.Repeat([]byte{1}, 8))},
		{"put-wrapping-offset", rawFrame(opPut, 0, 16, ^uint64(0)-7, 0, bytes.Repeat([]byte{1}, 16))},
		{"unknown-op", rawFrame(9, 0, 0, 0, 0, nil)},
		{"reserved-bytes", rawFrame(opSignal, 7, 0, 0, 1, nil)},
		{"signal-misaligned", rawFrame(opSignal, 0, 0, 3, 1, nil)},
		{"signal-past-end", rawFrame(opSignal, 0, 0, regionSize, 1, nil)},
		{"signal-with-payload", rawFrame(opSignal, 0, 8, 0, 1, make([]byte, 8))},
		{"gather-too-large", rawFrame(opAllGather, 0, 2<<20, 0, 0, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, pc := impersonate(t, []byte("right"), nil)
			if _, err := pc.Write(c.frame); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := r.reg.Wait(ctx, 0, 1); !errors.Is(err, ErrProtocol) {
				t.Fatalf("rank 0 wait: %v, want ErrProtocol", err)
			}
			for i, b := range r.reg.Bytes() {
				if b != 0 {
					t.Fatalf("region byte %d written (%d)", i, b)
				}
			}
			// The connection was dropped.
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(pc); err != nil && !isReset(err) {
				t.Fatalf("connection not closed: %v", err)
			}
			if err := r.t.Barrier(ctx); !errors.Is(err, ep.ErrTransport) {
				t.Fatalf("barrier after a hostile frame: %v, want ErrTransport", err)
			}
		})
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// TestBadHandshakes sends garbage and a wrong secret to the rendezvous:
// rank 0 drops those connections and still completes with the real rank 1.
func TestBadHandshakes(t *testing.T) {
	t.Run("bad-magic", func(t *testing.T) {
		r, _ := impersonate(t, []byte("right"), func(c net.Conn) {
			_, _ = c.Write(bytes.Repeat([]byte("x"), handshakeBytes))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); err != nil && !isReset(err) {
				t.Errorf("garbage hello: connection not dropped: %v", err)
			}
		})
		if r.reg == nil {
			t.Fatal("rank 0 did not register")
		}
	})
	t.Run("wrong-secret", func(t *testing.T) {
		impersonate(t, []byte("right"), func(c net.Conn) {
			_, err := handshake(c, true, hello{kind: 0, rank: 1, world: 2}, []byte("wrong"), time.Now().Add(5*time.Second))
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("handshake with a wrong secret: %v, want ErrProtocol", err)
			}
		})
	})
	t.Run("bad-version", func(t *testing.T) {
		impersonate(t, []byte("right"), func(c net.Conn) {
			h := hello{kind: 0, rank: 1, world: 2}
			p := h.encode()
			p[4] = 99
			_, _ = c.Write(p)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, handshakeBytes)
			if _, err := io.ReadFull(c, buf); err != nil {
				return // dropped before answering: fine
			}
			if _, err := io.ReadAll(c); err != nil && !isReset(err) {
				t.Errorf("bad version: connection not dropped: %v", err)
			}
		})
	})
}

type fuzzSink struct {
	reg  *ep.Region
	nbar int
}

func (s *fuzzSink) region() *ep.Region { return s.reg }
func (s *fuzzSink) barrier(uint64)     { s.nbar++ }
func (s *fuzzSink) gathered([]byte)    {}
func (s *fuzzSink) bye()               {}
func (s *fuzzSink) from() int          { return 1 }
func (s *fuzzSink) msgHandler() ep.MsgHandler {
	return fuzzMsgs{}
}

// fuzzMsgs accepts messages of up to 64 KiB whose meta is not "bad".
type fuzzMsgs struct{}

func (fuzzMsgs) MsgBuffer(from int, meta []byte, n int) ([]byte, error) {
	if string(meta) == "bad" || n > 64<<10 {
		return nil, errors.New("refused")
	}
	return make([]byte, n), nil
}
func (fuzzMsgs) Msg(int, []byte, []byte) {}
func (fuzzMsgs) MsgEnd(int, error)       {}

// FuzzReadFrames feeds arbitrary bytes to the frame decoder: it must never
// panic, and every put it accepts lies inside the region.
func FuzzReadFrames(f *testing.F) {
	f.Add(rawFrame(opPut, 0, 8, 0, 0, []byte("abcdefgh")))
	f.Add(append(rawFrame(opPut, 0, 4, 60, 0, []byte("wxyz")), rawFrame(opSignal, 0, 0, 8, 5, nil)...))
	f.Add(rawFrame(opPut, 0, 8, 60, 0, []byte("12345678")))
	f.Add(rawFrame(opAllGather, 0, 3, 0, 0, []byte("abc")))
	f.Add(rawFrame(opBarrier, 0, 0, 0, 7, nil))
	f.Add(rawFrame(opMsg, 0, 7, 3, 0, []byte("hdrbody")))
	f.Add(rawFrame(opMsg, 0, 7, 3, 0, []byte("badbody")))
	f.Add(rawFrame(opMsg, 0, 2, 3, 0, []byte("hd")))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &fuzzSink{reg: ep.NewRegion(64)}
		err := readFrames(bytes.NewReader(data), s)
		if err == nil {
			t.Fatal("readFrames returned nil at end of input")
		}
		// Replay to check that every put within the stream is in bounds.
		r := bytes.NewReader(data)
		hdr := make([]byte, frameHeader)
		for {
			if _, err := io.ReadFull(r, hdr); err != nil {
				return
			}
			fr, err := decodeFrame(hdr)
			if err != nil {
				return
			}
			if fr.op == opPut && (fr.off > 64 || uint64(fr.len) > 64-fr.off) {
				if !errors.Is(readFramesErr(data), ErrProtocol) {
					t.Fatalf("out-of-range put at %d+%d accepted", fr.off, fr.len)
				}
				return
			}
			if fr.op == opPut || fr.op == opAllGather || fr.op == opMsg {
				if _, err := r.Seek(int64(fr.len), io.SeekCurrent); err != nil {
					return
				}
			}
		}
	})
}

func readFramesErr(data []byte) error {
	return readFrames(bytes.NewReader(data), &fuzzSink{reg: ep.NewRegion(64)})
}
