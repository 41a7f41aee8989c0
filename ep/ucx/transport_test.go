package ucx

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
)

// TestSignalOrdering checks what Signal promises: many puts of mixed
// sizes (8 B to 1 MiB, some split into several buffers, in random order)
// to a peer, then one Signal; when the peer's counter reaches the
// signal's value every byte of every put is in its region. Twenty rounds
// (six under -short) with fresh bytes, over shared memory and TCP, between
// two ranks of this process (TestSignalOrderingProcesses: between two
// processes); over shared memory both with puts into the mapped region
// and with Options.NoMappedPuts (ucp_put_nbx, then a flush).
func TestSignalOrdering(t *testing.T) {
	type setup struct {
		tls      string
		noMapped bool
	}
	setups := []setup{{tlsSets[0], false}, {tlsSets[0], true}, {tlsSets[1], false}}
	for _, su := range setups {
		name := su.tls
		if su.noMapped {
			name += "/no-mapped-puts"
		}
		t.Run(name, func(t *testing.T) {
			size, rounds := orderingShape()
			ts, regs := pairWith(t, su.tls, size, su.noMapped)
			// Shared memory maps the peer's region unless told not to; TCP
			// never does.
			wantMapped := su.tls == tlsSets[0] && !su.noMapped
			for r, tr := range ts {
				if got := tr.peers[1-r].mapped != nil; got != wantMapped {
					t.Fatalf("rank %d: peer region mapped = %v, want %v (transports %v)", r, got, wantMapped, tr.Transports())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for r := range 2 {
				wg.Add(1)
				go func() { defer wg.Done(); errs[r] = orderingRank(ctx, ts[r], regs[r], size, rounds) }()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func orderingShape() (size, rounds int) {
	if testing.Short() {
		return 1 << 20, 6
	}
	return 4 << 20, 20
}

// orderingRank is one rank of the ordering check: both ranks draw the same
// bytes from the same seed; rank 0 puts them and signals, rank 1 waits for
// the signal and compares its whole region; a barrier ends each round.
func orderingRank(ctx context.Context, tr *Transport, reg *ep.Region, size, rounds int) error {
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, size)
	for round := 1; round <= rounds; round++ {
		// Fill [64, size) with puts of random sizes, in random order.
		type span struct{ off, n int }
		var spans []span
		for off := 64; off < size; {
			n := min(size-off, 8<<rng.IntN(18))
			spans = append(spans, span{off, n})
			off += n
		}
		rng.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
		for _, s := range spans {
			b := make([]byte, s.n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			copy(want[s.off:], b)
			split := s.n >= 16 && rng.IntN(2) == 0
			if tr.Rank() != 0 {
				continue
			}
			var err error
			if split {
				err = tr.Put(ctx, 1, s.off, b[:s.n/3], b[s.n/3:s.n/2], b[s.n/2:])
			} else {
				err = tr.Put(ctx, 1, s.off, b)
			}
			if err != nil {
				return err
			}
		}
		if tr.Rank() == 0 {
			if err := tr.Signal(ctx, 1, 8, 3); err != nil {
				return err
			}
		} else {
			if v, err := reg.Wait(ctx, 8, int64(3*round)); err != nil || v != int64(3*round) {
				return fmt.Errorf("round %d: counter %d, %v", round, v, err)
			}
			if got := reg.Bytes()[64:size]; !bytes.Equal(got, want[64:]) {
				i := 0
				for got[i] == want[64+i] {
					i++
				}
				return fmt.Errorf("round %d: byte %d of the region is %#x after the signal, want %#x", round, 64+i, got[i], want[64+i])
			}
		}
		if err := tr.Barrier(ctx); err != nil {
			return err
		}
	}
	return nil
}

func barrier(ctx context.Context, ts []*Transport) error {
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, tr := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = tr.Barrier(ctx) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// TestStreamedPut: a gathered mapped Put above streamMin (copied with
// non-temporal stores) at an unaligned offset, then a Signal: when the
// counter shows the signal, every byte is in the peer's region and the
// bytes around it are untouched.
func TestStreamedPut(t *testing.T) {
	const size = 2*streamMin + 4096
	ts, regs := pair(t, tlsSets[0], size)
	if ts[0].peers[1].mapped == nil {
		t.Skipf("UCX does not map the peer's region here (transports %v)", ts[0].Transports())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := streamMin + 1234
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(i*13 + 5)
	}
	const off = 64 + 7
	if err := ts[0].Put(ctx, 1, off, src[:n/3], src[n/3:n/2], src[n/2:]); err != nil {
		t.Fatal(err)
	}
	if err := ts[0].Signal(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := regs[1].Wait(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	got := regs[1].Bytes()
	if !bytes.Equal(got[off:off+n], src) {
		t.Fatal("the streamed put's bytes differ in the peer's region")
	}
	if !bytes.Equal(got[8:off], make([]byte, off-8)) || !bytes.Equal(got[off+n:], make([]byte, size-off-n)) {
		t.Error("bytes around the streamed put changed")
	}
}

// TestBounds: puts and signals outside the destination region, or to a
// rank that does not exist, fail on the sender with ep.ErrRange and write
// nothing; calls before Register and a second Register fail with
// ep.ErrConfig.
func TestBounds(t *testing.T) {
	ts, regs := pair(t, tlsSets[0], 1000) // rounded up to 1024
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n := regs[1].Len(); n != 1024 {
		t.Fatalf("region of %d bytes, want 1024", n)
	}
	b := bytes.Repeat([]byte{0xab}, 64)
	for _, c := range []struct {
		name string
		err  error
	}{
		{"put past the end", ts[0].Put(ctx, 1, 1000, b)},
		{"put straddling the end", ts[0].Put(ctx, 1, 1023, []byte{1, 2})},
		{"negative offset", ts[0].Put(ctx, 1, -8, b)},
		{"huge offset", ts[0].Put(ctx, 1, 1<<62, b)},
		{"gathered past the end", ts[0].Put(ctx, 1, 960, b, b)},
		{"rank out of range", ts[0].Put(ctx, 2, 0, b)},
		{"negative rank", ts[0].Signal(ctx, -1, 0, 1)},
		{"signal past the end", ts[0].Signal(ctx, 1, 1024, 1)},
		{"signal unaligned", ts[0].Signal(ctx, 1, 4, 1)},
		{"self signal past the end", ts[0].Signal(ctx, 0, 1024, 1)},
		{"self put past the end", ts[0].Put(ctx, 0, 1020, b)},
	} {
		if !errors.Is(c.err, ep.ErrRange) {
			t.Errorf("%s: %v, want ep.ErrRange", c.name, c.err)
		}
	}
	if err := ts[0].Put(ctx, 1, 960, b); err != nil { // exactly the last 64 bytes
		t.Fatal(err)
	}
	if err := ts[0].Signal(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := regs[1].Wait(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	got := regs[1].Bytes()
	if !bytes.Equal(got[960:], b) || !bytes.Equal(got[8:960], make([]byte, 952)) {
		t.Error("the region holds bytes that no valid put wrote")
	}
	if _, err := ts[0].Register(ctx, 64); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("second Register: %v, want ep.ErrConfig", err)
	}
	if err := barrier(ctx, ts[:]); err != nil {
		t.Fatal(err)
	}
}

// TestBeforeRegister: Put and Signal before Register, and a region size
// that is not a multiple of 8, are configuration errors.
func TestBeforeRegister(t *testing.T) {
	ts := dialPair(t, tlsSets[1])
	ctx := context.Background()
	if err := ts[0].Put(ctx, 1, 0, []byte{1}); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("Put before Register: %v", err)
	}
	if err := ts[0].Signal(ctx, 1, 0, 1); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("Signal before Register: %v", err)
	}
	if _, err := ts[0].Register(ctx, 12); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("Register(12): %v", err)
	}
	if _, err := ts[0].Register(ctx, -8); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("Register(-8): %v", err)
	}
}

// dialPair is pair without Register.
func dialPair(tb testing.TB, tls string) [2]*Transport {
	tb.Helper()
	needUCX(tb)
	master := filepath.Join(tb.TempDir(), "m.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ts [2]*Transport
	var errs [2]error
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts[r], errs[r] = Dial(ctx, Options{Boot: sock.Options{Network: "unix", Rank: r, WorldSize: 2, MasterAddr: master}, Config: map[string]string{"TLS": tls}})
		}()
	}
	wg.Wait()
	tb.Cleanup(func() {
		for _, t := range ts {
			if t != nil {
				t.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return ts
}

// TestHostileSignal: a peer that sends a signal message for an offset
// outside this rank's region (bypassing its own checks) cannot add to
// memory outside the region: the receiver refuses it, and its waits fail
// with ep.ErrRange.
func TestHostileSignal(t *testing.T) {
	ts, regs := pair(t, tlsSets[0], 64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := make([]byte, sigMsgLen)
	binary.LittleEndian.PutUint64(msg[0:], 0)
	binary.LittleEndian.PutUint64(msg[8:], 1<<20) // far outside 64 bytes
	binary.LittleEndian.PutUint64(msg[16:], 1)
	a := ts[0]
	a.mu.Lock()
	req, err := a.l.tagSend(a.eps[1], unsafe.Pointer(&msg[0]), sigMsgLen, sigTag)
	a.mu.Unlock()
	if err == nil {
		err = a.wait(ctx, req, "ucp_tag_send_nbx", "hostile signal")
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = regs[1].Wait(ctx, 0, 1)
	if !errors.Is(err, ep.ErrRange) || !strings.Contains(err.Error(), "outside the region") {
		t.Fatalf("wait after a hostile signal: %v, want ep.ErrRange", err)
	}
	if !bytes.Equal(regs[1].Bytes(), make([]byte, 64)) {
		t.Error("the hostile signal changed the region")
	}
}

// TestBootstrapTimeout: a peer that never joins makes Dial fail with
// ep.ErrTransport at the bootstrap's deadline, on the rank that waits for
// it as master and on one that waits for a master that never comes.
func TestBootstrapTimeout(t *testing.T) {
	needUCX(t)
	for _, rank := range []int{0, 1} {
		t.Run(fmt.Sprint("rank", rank), func(t *testing.T) {
			master := filepath.Join(t.TempDir(), "m.sock")
			start := time.Now()
			tr, err := Dial(context.Background(), Options{Boot: sock.Options{Network: "unix", Rank: rank, WorldSize: 2, MasterAddr: master, Timeout: time.Second}})
			if err == nil {
				tr.Close()
				t.Fatal("Dial succeeded without a peer")
			}
			if !errors.Is(err, ep.ErrTransport) {
				t.Errorf("error %v, want ep.ErrTransport", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failed after %v, deadline 1s", d)
			}
			t.Log(err)
		})
	}
}

// TestOptions: bad Options fail Dial with ep.ErrConfig, and so does a UCX
// option value that UCX cannot parse.
func TestOptions(t *testing.T) {
	needUCX(t)
	ctx := context.Background()
	if _, err := Dial(ctx, Options{Boot: sock.Options{Network: "unix", WorldSize: 1, MasterAddr: filepath.Join(t.TempDir(), "m")}, ErrMode: "sometimes"}); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("bad ErrMode: %v", err)
	}
	if _, err := Dial(ctx, Options{Boot: sock.Options{Network: "udp", WorldSize: 1}}); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("bad bootstrap network: %v", err)
	}
	_, err := Dial(ctx, Options{Boot: sock.Options{Network: "unix", WorldSize: 1, MasterAddr: filepath.Join(t.TempDir(), "m")}, Config: map[string]string{"RNDV_THRESH": "lots"}})
	if !errors.Is(err, ep.ErrConfig) || !strings.Contains(err.Error(), "RNDV_THRESH") {
		t.Errorf("bad UCX option value: %v", err)
	}
	for _, mode := range []string{ErrModePeer, ErrModeNone} {
		tr, err := Dial(ctx, Options{Boot: sock.Options{Network: "unix", WorldSize: 1, MasterAddr: filepath.Join(t.TempDir(), "m")}, Config: map[string]string{"TLS": "tcp,self"}, ErrMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if tr.PeerErrorHandling() != (mode == ErrModePeer) || len(tr.Transports()) == 0 {
			t.Errorf("ErrMode %q: peer error handling %v, transports %v", mode, tr.PeerErrorHandling(), tr.Transports())
		}
		tr.Close()
	}
}

// TestRegistry: "ucx" is constructed by name through ep.OpenTransport
// with a TCP bootstrap on loopback, and bad configurations are rejected
// with ep.ErrConfig before anything is dialled.
func TestRegistry(t *testing.T) {
	needUCX(t)
	found := false
	for _, s := range ep.Transports() {
		if s.Name == "ucx" {
			found = s.Err == nil && s.Doc != ""
		}
	}
	if !found {
		t.Fatalf("ucx is not a usable registered transport: %+v", ep.Transports())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make([]ep.Transport, 2)
	var wg sync.WaitGroup
	for r := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts, err := ep.OpenTransport(ctx, "ucx", ep.TransportConfig{WorldSize: 2, Rank: r, MasterAddr: "127.0.0.1", MasterPort: port, Secret: []byte("k")})
			if err != nil || len(ts) != 1 || ts[0].Rank() != r {
				t.Errorf("rank %d: %v", r, err)
				return
			}
			got[r] = ts[0]
		}()
	}
	wg.Wait()
	for _, tr := range got {
		if tr != nil {
			defer tr.Close()
		}
	}
	if got[0] != nil && got[1] != nil {
		errs := make([]error, 2)
		for i, tr := range got {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = tr.Barrier(ctx) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	for _, cfg := range []ep.TransportConfig{{WorldSize: 0}, {WorldSize: 2, Rank: 2}, {WorldSize: 2, Rank: -1}, {WorldSize: 1, Timeout: -time.Second}} {
		if _, err := ep.OpenTransport(ctx, "ucx", cfg); !errors.Is(err, ep.ErrConfig) {
			t.Errorf("%+v: %v, want ep.ErrConfig", cfg, err)
		}
	}
}

// FuzzOptionsFor: any TransportConfig gives Options or an error wrapping
// ep.ErrConfig, never a panic.
func FuzzOptionsFor(f *testing.F) {
	f.Add(2, 1, "127.0.0.1", 8361, int64(time.Second), false)
	f.Add(0, 0, "", 0, int64(0), true)
	f.Add(-5, 7, "::1", 70000, int64(-1), false)
	f.Fuzz(func(t *testing.T, world, rank int, addr string, port int, timeout int64, remote bool) {
		o, err := optionsFor(ep.TransportConfig{WorldSize: world, Rank: rank, MasterAddr: addr, MasterPort: port, Timeout: time.Duration(timeout), AllowRemote: remote})
		if err != nil {
			if !errors.Is(err, ep.ErrConfig) {
				t.Fatalf("error %v does not wrap ep.ErrConfig", err)
			}
			return
		}
		if o.Boot.Rank != rank || o.Boot.WorldSize != world || o.Boot.Network != "tcp" || o.Boot.MasterPort == 0 {
			t.Fatalf("optionsFor gave %+v", o.Boot)
		}
	})
}

// FuzzPut: puts of any offset and length to a 4 KiB region either fail
// with ep.ErrRange and write nothing, or land exactly (checked after a
// Signal against a copy of what the region should hold).
func FuzzPut(f *testing.F) {
	if _, err := load(); err != nil {
		f.Skip(err)
	}
	f.Add(64, 100, uint8(1))
	f.Add(4090, 8, uint8(2))
	f.Add(-1, 1, uint8(1))
	f.Add(4096, 0, uint8(3))
	f.Add(0, 4096, uint8(4))
	ts, regs := pair(f, tlsSets[0], 4096)
	want := make([]byte, 4096)
	signals := int64(0)
	f.Fuzz(func(t *testing.T, off, n int, parts uint8) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if n < 0 || n > 1<<16 {
			n %= 1 << 16
			if n < 0 {
				n = -n
			}
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + off)
		}
		var bufs [][]byte
		k := int(parts%4) + 1
		for i := range k {
			bufs = append(bufs, b[i*n/k:(i+1)*n/k])
		}
		outside := off < 0 || off > 4096 || n > 4096-off
		if !outside && off < 8 {
			return // would overwrite the signal counter (word 0) that this test waits on
		}
		err := ts[0].Put(ctx, 1, off, bufs...)
		switch {
		case outside && !errors.Is(err, ep.ErrRange):
			t.Fatalf("Put(off %d, %d bytes): %v, want ep.ErrRange", off, n, err)
		case outside:
			return
		case err != nil:
			t.Fatalf("Put(off %d, %d bytes): %v", off, n, err)
		}
		copy(want[off:], b)
		signals++
		if err := ts[0].Signal(ctx, 1, 0, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := regs[1].Wait(ctx, 0, signals); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(regs[1].Bytes()[8:], want[8:]) {
			t.Fatalf("region differs after Put(off %d, %d bytes)", off, n)
		}
	})
}
