package fstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
)

// Opener returns a fresh Client of the backend under test, rooted in a
// directory the test owns (t.TempDir() for disk backends). The suite closes
// it.
type Opener func(t *testing.T) *fs.Client

// Run runs every conformance case against the backend open returns.
func Run(t *testing.T, open Opener) {
	cases := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"random read write vs mem", testRandom},
		{"write then read back", testWriteRead},
		{"read at and past EOF", testEOF},
		{"holes read as zeros", testHoles},
		{"ring full", testRingFull},
		{"wrong direction", testWrongDirection},
		{"unregistered file", testUnregistered},
		{"region out of range and across a block", testRegion},
		{"batch asap", testASAP},
		{"batch exact fails fast", testExact},
		{"batch at most with timeout", testAtMost},
		{"wait context", testWaitContext},
		{"priorities with flags", testPriorities},
		{"close ring with I/O in flight", testCloseRing},
		{"close client with I/O in flight", testCloseClient},
		{"several rings at once", testSeveralRings},
		{"reader at and writer at", testReaderWriterAt},
		{"batch calls", testBatchCalls},
		{"wrap caller memory", testWrapBuffer},
		{"shared buffer opened by id", testOpenBuffer},
		{"punch hole", testPunchHole},
		{"hard link", testHardlink},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer guard(t)
			c.fn(t, open)
		})
	}
}

// NewBackend returns a fresh Backend under test for a Client rooted at root,
// a directory the test owns.
type NewBackend func(t *testing.T, root string) fs.Backend

// RunBackend certifies any fs.Backend, built-in or not: it runs every
// conformance case on Clients opened with fs.WithBackendValue on the
// backends newBackend returns, each rooted in a fresh t.TempDir().
func RunBackend(t *testing.T, newBackend NewBackend) {
	Run(t, func(t *testing.T) *fs.Client {
		root := t.TempDir()
		c, err := fs.Open(context.Background(), root, fs.WithBackendValue(newBackend(t, root)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// Oracle returns a mem-backed Client (the reference the suite compares
// with).
func Oracle(t testing.TB) *fs.Client {
	c, err := fs.Open(context.Background(), "", fs.WithBackend("mem"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openC(t *testing.T, open Opener) *fs.Client {
	t.Helper()
	c := open(t)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Client.Close: %v", err)
		}
	})
	return c
}

// failure carries a must error to guard, which fails the test with it.
type failure struct {
	err  error
	file string
	line int
}

// must returns v, or panics with a failure that guard turns into t.Fatal.
func must[T any](v T, err error) T {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(failure{err, filepath.Base(file), line})
	}
	return v
}

// guard converts a must panic into t.Fatalf; call it deferred.
func guard(t testing.TB) {
	if r := recover(); r != nil {
		if f, ok := r.(failure); ok {
			t.Fatalf("%s:%d: %v", f.file, f.line, f.err)
		}
		panic(r)
	}
}

// side is one client with a file and a buffer, driven identically to
// another side.
type side struct {
	c        *fs.Client
	f        *fs.File
	buf      *fs.Buffer
	rd, wr   *fs.Ring
	out      []fs.Completion
	fileName string
}

func newSide(t testing.TB, c *fs.Client, name string, bufSize, entries int) *side {
	t.Helper()
	s := &side{c: c, fileName: name, out: make([]fs.Completion, entries)}
	s.f = must(c.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644))
	s.buf = must(c.NewBuffer(bufSize, fs.BufferOpts{}))
	s.rd = must(c.NewRing(fs.RingOpts{Entries: entries, Op: fs.Read}))
	s.wr = must(c.NewRing(fs.RingOpts{Entries: entries, Op: fs.Write}))
	return s
}

// do runs one I/O on r and returns its completion.
func (s *side) do(t testing.TB, r *fs.Ring, off int64, boff, n int, tag uint64) fs.Completion {
	t.Helper()
	reg := must(s.buf.Region(boff, n))
	if _, err := r.Prep(fs.Req{File: s.f, Off: off, Buf: reg, Tag: tag}); err != nil {
		t.Fatalf("%s Prep(off=%d, n=%d): %v", s.c.Backend(), off, n, err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	k, err := r.Wait(context.Background(), s.out, 1)
	if err != nil || k != 1 {
		t.Fatalf("%s Wait = %d, %v", s.c.Backend(), k, err)
	}
	if s.out[0].Tag != tag {
		t.Fatalf("%s tag %d, want %d", s.c.Backend(), s.out[0].Tag, tag)
	}
	return s.out[0]
}

func testRandom(t *testing.T, open Opener) {
	CheckSequence(t, openC(t, open), Oracle(t), randomOps(rand.New(rand.NewPCG(1, 2)), 300))
}

func testWriteRead(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "wr", 1<<20, 8)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range s.buf.Bytes() {
		s.buf.Bytes()[i] = byte(r.Uint32())
	}
	want := bytes.Clone(s.buf.Bytes())
	// 16 writes of 64 KiB, all in flight at once (8 entries: two rounds).
	for round := range 2 {
		for i := range 8 {
			k := round*8 + i
			reg := must(s.buf.Region(k*65536, 65536))
			must(s.wr.Prep(fs.Req{File: s.f, Off: int64(k) * 65536, Buf: reg, Tag: uint64(k)}))
		}
		if err := s.wr.Submit(); err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		for len(seen) < 8 {
			n, err := s.wr.Wait(context.Background(), s.out, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, cp := range s.out[:n] {
				if cp.Err != nil || cp.N != 65536 || seen[cp.Tag] {
					t.Fatalf("completion %+v (seen before: %v)", cp, seen[cp.Tag])
				}
				seen[cp.Tag] = true
			}
		}
	}
	clear(s.buf.Bytes())
	for k := range 16 {
		cp := s.do(t, s.rd, int64(k)*65536, k*65536, 65536, uint64(100+k))
		if cp.Err != nil || cp.N != 65536 {
			t.Fatalf("read %d: %+v", k, cp)
		}
	}
	if !bytes.Equal(s.buf.Bytes(), want) {
		t.Fatal("data read back differs from data written")
	}
	if err := s.f.Sync(); err != nil {
		t.Fatal(err)
	}
	if sz := must(s.f.Size()); sz != 1<<20 {
		t.Fatalf("size %d, want %d", sz, 1<<20)
	}
}

func testEOF(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "eof", 8192, 4)
	copy(s.buf.Bytes(), bytes.Repeat([]byte{0xab}, 1000))
	if cp := s.do(t, s.wr, 0, 0, 1000, 1); cp.N != 1000 || cp.Err != nil {
		t.Fatalf("write: %+v", cp)
	}
	for _, tc := range []struct {
		off   int64
		n     int
		wantN int64
	}{
		{0, 1000, 1000}, {500, 1000, 500}, {999, 10, 1}, {1000, 10, 0}, {5000, 4096, 0},
	} {
		clear(s.buf.Bytes())
		cp := s.do(t, s.rd, tc.off, 0, tc.n, 2)
		if cp.Err != nil || cp.N != tc.wantN {
			t.Errorf("read off=%d n=%d: got N=%d err=%v, want N=%d", tc.off, tc.n, cp.N, cp.Err, tc.wantN)
		}
		if !bytes.Equal(s.buf.Bytes()[:cp.N], bytes.Repeat([]byte{0xab}, int(cp.N))) {
			t.Errorf("read off=%d: wrong data", tc.off)
		}
	}
}

func testHoles(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "holes", 1<<16, 4)
	copy(s.buf.Bytes(), bytes.Repeat([]byte{7}, 4096))
	s.do(t, s.wr, 0, 0, 4096, 1)
	s.do(t, s.wr, 40960, 0, 4096, 2)
	for i := range s.buf.Bytes() {
		s.buf.Bytes()[i] = 0xee
	}
	cp := s.do(t, s.rd, 0, 0, 45056, 3)
	if cp.Err != nil || cp.N != 45056 {
		t.Fatalf("read across hole: %+v", cp)
	}
	b := s.buf.Bytes()
	if !bytes.Equal(b[:4096], bytes.Repeat([]byte{7}, 4096)) || !bytes.Equal(b[4096:40960], make([]byte, 36864)) || !bytes.Equal(b[40960:45056], bytes.Repeat([]byte{7}, 4096)) {
		t.Fatal("hole not zero-filled or data wrong")
	}
}

func testRingFull(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "full", 4096*5, 4)
	for i := range 4 {
		must(s.rd.Prep(fs.Req{File: s.f, Off: 0, Buf: must(s.buf.Region(i*4096, 4096)), Tag: uint64(i)}))
	}
	_, err := s.rd.Prep(fs.Req{File: s.f, Off: 0, Buf: must(s.buf.Region(4*4096, 4096)), Tag: 4})
	if !errors.Is(err, fs.ErrRingFull) || !errors.Is(err, syscallEAGAIN) {
		t.Fatalf("5th Prep on 4 entries: %v, want ErrRingFull (EAGAIN)", err)
	}
	if err := s.rd.Submit(); err != nil {
		t.Fatal(err)
	}
	n, err := s.rd.Wait(context.Background(), s.out, 4)
	if err != nil || n != 4 {
		t.Fatalf("Wait = %d, %v", n, err)
	}
	if _, err := s.rd.Prep(fs.Req{File: s.f, Off: 0, Buf: must(s.buf.Region(0, 4096)), Tag: 5}); err != nil {
		t.Fatalf("Prep after drain: %v", err)
	}
}

func testWrongDirection(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "dir", 4096, 4)
	ro := must(c.OpenFile("dir", os.O_RDONLY, 0))
	wo := must(c.OpenFile("dir", os.O_WRONLY, 0))
	reg := must(s.buf.Region(0, 4096))
	if _, err := s.wr.Prep(fs.Req{File: ro, Buf: reg}); !errors.Is(err, fs.ErrWrongDirection) {
		t.Errorf("write ring, O_RDONLY file: %v, want ErrWrongDirection", err)
	}
	if _, err := s.rd.Prep(fs.Req{File: wo, Buf: reg}); !errors.Is(err, fs.ErrWrongDirection) {
		t.Errorf("read ring, O_WRONLY file: %v, want ErrWrongDirection", err)
	}
	if _, err := s.rd.Prep(fs.Req{File: ro, Buf: reg}); err != nil {
		t.Errorf("read ring, O_RDONLY file: %v", err)
	}
	s.rd.Close()
	ro.Close()
	wo.Close()
}

func testUnregistered(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "unreg", 4096, 4)
	reg := must(s.buf.Region(0, 4096))
	f2 := must(c.OpenFile("unreg", os.O_RDWR, 0))
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rd.Prep(fs.Req{File: f2, Buf: reg}); !errors.Is(err, fs.ErrUnregistered) {
		t.Errorf("closed file: %v, want ErrUnregistered", err)
	}
	if _, err := s.rd.Prep(fs.Req{File: nil, Buf: reg}); !errors.Is(err, fs.ErrUnregistered) {
		t.Errorf("nil file: %v, want ErrUnregistered", err)
	}
	other := openC(t, open)
	of := must(other.OpenFile("other", os.O_RDWR|os.O_CREATE, 0o644))
	if _, err := s.rd.Prep(fs.Req{File: of, Buf: reg}); !errors.Is(err, fs.ErrUnregistered) {
		t.Errorf("file of another client: %v, want ErrUnregistered", err)
	}
}

func testRegion(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "region", 4096, 4)
	for _, tc := range []struct{ off, n int }{{-1, 10}, {0, 0}, {4000, 97}, {4096, 1}, {0, 4097}} {
		if _, err := s.buf.Region(tc.off, tc.n); !errors.Is(err, fs.ErrRange) {
			t.Errorf("Region(%d, %d): %v, want ErrRange", tc.off, tc.n, err)
		}
	}
	blk := must(c.NewBuffer(4*4096, fs.BufferOpts{BlockSize: 4096}))
	if _, err := blk.Region(4000, 200); !errors.Is(err, fs.ErrRange) {
		t.Errorf("region across a block: %v, want ErrRange", err)
	}
	if _, err := blk.Region(4096, 4096); err != nil {
		t.Errorf("region filling one block: %v", err)
	}
	if _, err := c.NewBuffer(10000, fs.BufferOpts{BlockSize: 4096}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("block size not dividing size: %v, want ErrInvalid", err)
	}
	if _, err := s.rd.Prep(fs.Req{File: s.f, Buf: fs.Region{}}); !errors.Is(err, fs.ErrRange) {
		t.Errorf("zero Region: %v, want ErrRange", err)
	}
	if _, err := s.rd.Prep(fs.Req{File: s.f, Off: -5, Buf: must(s.buf.Region(0, 10))}); !errors.Is(err, fs.ErrRange) {
		t.Errorf("negative offset: %v, want ErrRange", err)
	}
	other := Oracle(t)
	ob := must(other.NewBuffer(4096, fs.BufferOpts{}))
	if _, err := s.rd.Prep(fs.Req{File: s.f, Buf: must(ob.Region(0, 10))}); !errors.Is(err, fs.ErrRange) {
		t.Errorf("buffer of another client: %v, want ErrRange", err)
	}
	closed := must(c.NewBuffer(4096, fs.BufferOpts{}))
	creg := must(closed.Region(0, 10))
	closed.Close()
	if _, err := s.rd.Prep(fs.Req{File: s.f, Buf: creg}); !errors.Is(err, fs.ErrRange) {
		t.Errorf("closed buffer: %v, want ErrRange", err)
	}
}

// prepN preps n 4 KiB reads of a 64 KiB file on r.
func prepN(t *testing.T, s *side, r *fs.Ring, n int, tag0 int) {
	t.Helper()
	for i := range n {
		must(r.Prep(fs.Req{File: s.f, Off: int64((tag0 + i) % 16 * 4096), Buf: must(s.buf.Region((tag0+i)%16*4096, 4096)), Tag: uint64(tag0 + i)}))
	}
}

func batchSide(t *testing.T, open Opener, b fs.Batch) (*side, *fs.Ring) {
	c := openC(t, open)
	s := newSide(t, c, "batch", 65536, 16)
	copy(s.buf.Bytes(), bytes.Repeat([]byte{1}, 65536))
	s.do(t, s.wr, 0, 0, 65536, 0)
	r := must(c.NewRing(fs.RingOpts{Entries: 16, Op: fs.Read, Batch: b}))
	return s, r
}

func testASAP(t *testing.T, open Opener) {
	s, r := batchSide(t, open, fs.Batch{Mode: fs.ASAP})
	prepN(t, s, r, 5, 0)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	n, err := r.Wait(context.Background(), s.out, 5)
	if err != nil || n != 5 {
		t.Fatalf("Wait = %d, %v", n, err)
	}
	if st := r.Stats(); st.Batches != 1 || st.Dispatched != 5 || st.Completed != 5 {
		t.Fatalf("stats %+v, want one batch of 5", st)
	}
	// Waiting for more than was ever submitted fails fast.
	if _, err := r.Wait(context.Background(), s.out, 1); !errors.Is(err, fs.ErrWouldStall) {
		t.Fatalf("Wait with nothing in flight: %v, want ErrWouldStall", err)
	}
}

func testExact(t *testing.T, open Opener) {
	s, r := batchSide(t, open, fs.Batch{Mode: fs.Exact, Depth: 4})
	prepN(t, s, r, 3, 0)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := r.Wait(context.Background(), s.out, 1)
	if !errors.Is(err, fs.ErrWouldStall) || n != 0 {
		t.Fatalf("Exact(4) with 3 prepped: Wait = %d, %v; want 0, ErrWouldStall", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("ErrWouldStall took %v, want at once", d)
	}
	prepN(t, s, r, 6, 3) // 9 queued: two batches of 4 go, 1 stays
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	n, err = r.Wait(context.Background(), s.out, 8)
	if err != nil || n != 8 {
		t.Fatalf("Wait(8) = %d, %v", n, err)
	}
	if st := r.Stats(); st.Batches != 2 || st.Dispatched != 8 {
		t.Fatalf("stats %+v, want 2 batches, 8 dispatched", st)
	}
	if _, err := r.Wait(context.Background(), s.out, 1); !errors.Is(err, fs.ErrWouldStall) {
		t.Fatalf("1 left over: %v, want ErrWouldStall", err)
	}
	if err := r.Close(); err != nil { // drops the leftover
		t.Fatal(err)
	}
}

func testAtMost(t *testing.T, open Opener) {
	s, r := batchSide(t, open, fs.Batch{Mode: fs.AtMost, Depth: 4, Timeout: 30 * time.Millisecond})
	prepN(t, s, r, 6, 0)
	start := time.Now()
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Batches != 1 || st.Dispatched != 4 {
		t.Fatalf("after Submit: %+v, want one full batch of 4", st)
	}
	n, err := r.Wait(context.Background(), s.out, 6)
	if err != nil || n != 6 {
		t.Fatalf("Wait(6) = %d, %v", n, err)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Fatalf("partial batch went after %v, before its 30ms timeout", d)
	}
	if st := r.Stats(); st.Batches != 2 {
		t.Fatalf("stats %+v, want 2 batches", st)
	}
	// Timeout 0: a partial batch goes at once.
	r0 := must(s.c.NewRing(fs.RingOpts{Entries: 8, Op: fs.Read, Batch: fs.Batch{Mode: fs.AtMost, Depth: 4}}))
	prepN(t, s, r0, 3, 0)
	if err := r0.Submit(); err != nil {
		t.Fatal(err)
	}
	if st := r0.Stats(); st.Dispatched != 3 {
		t.Fatalf("AtMost timeout 0: %+v, want 3 dispatched", st)
	}
	if n, err := r0.Wait(context.Background(), s.out, 3); n != 3 || err != nil {
		t.Fatalf("Wait = %d, %v", n, err)
	}
	if _, err := s.c.NewRing(fs.RingOpts{Entries: 4, Batch: fs.Batch{Mode: fs.Exact, Depth: 5}}); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Depth > Entries: %v, want ErrInvalid", err)
	}
}

func testWaitContext(t *testing.T, open Opener) {
	s, r := batchSide(t, open, fs.Batch{Mode: fs.ASAP})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	prepN(t, s, r, 2, 0)
	r.Submit()
	// With I/O in flight, a cancelled context returns what is ready and
	// ctx.Err(), or both completions if they were already there.
	n, err := r.Wait(ctx, s.out, 2)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled) = %d, %v", n, err)
	}
	rest := 2 - n
	if rest > 0 {
		k, err := r.Wait(context.Background(), s.out, rest)
		if err != nil || k != rest {
			t.Fatalf("Wait rest = %d, %v", k, err)
		}
	}
}

func testPriorities(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "prio", 8192, 4)
	copy(s.buf.Bytes(), "priority")
	s.do(t, s.wr, 0, 0, 8, 1)
	for _, p := range []fs.Priority{fs.High, fs.Normal, fs.Low} {
		r := must(c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Read, Priority: p, Flags: fs.AllowReadUncommitted}))
		clear(s.buf.Bytes())
		must(r.Prep(fs.Req{File: s.f, Buf: must(s.buf.Region(0, 4096)), Tag: 9}))
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		n, err := r.Wait(context.Background(), s.out, 1)
		if err != nil || n != 1 || s.out[0].Err != nil || s.out[0].N != 8 || string(s.buf.Bytes()[:8]) != "priority" {
			t.Fatalf("priority %d: Wait = %d, %v, %+v", p, n, err, s.out[0])
		}
		r.Close()
	}
}

func testCloseRing(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "closering", 1<<20, 64)
	for i := range 64 {
		must(s.wr.Prep(fs.Req{File: s.f, Off: int64(i) * 16384, Buf: must(s.buf.Region(i*16384, 16384)), Tag: uint64(i)}))
	}
	if err := s.wr.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := s.buf.Close(); !errors.Is(err, fs.ErrBusy) {
		t.Errorf("Buffer.Close with I/O in flight: %v, want ErrBusy", err)
	}
	if err := s.wr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wr.Prep(fs.Req{File: s.f, Buf: must(s.buf.Region(0, 1))}); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Prep after Close: %v, want ErrClosed", err)
	}
	// The ring's resources are gone (on uring its mapped queues): Wait
	// and Submit fail instead of reading them.
	if n, err := s.wr.Wait(context.Background(), s.out, 0); n != 0 || !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Wait after Close: %d, %v, want 0, ErrClosed", n, err)
	}
	if err := s.wr.Submit(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Submit after Close: %v, want ErrClosed", err)
	}
	if err := s.f.Close(); err != nil {
		t.Errorf("File.Close after ring closed: %v", err)
	}
	if err := s.buf.Close(); err != nil {
		t.Errorf("Buffer.Close after ring closed: %v", err)
	}
}

func testCloseClient(t *testing.T, open Opener) {
	c := open(t)
	s := newSide(t, c, "closeclient", 1<<20, 64)
	for i := range 64 {
		must(s.wr.Prep(fs.Req{File: s.f, Off: int64(i) * 16384, Buf: must(s.buf.Region(i*16384, 16384)), Tag: uint64(i)}))
	}
	if err := s.wr.Submit(); err != nil {
		t.Fatal(err)
	}
	must(s.rd.Prep(fs.Req{File: s.f, Buf: must(s.buf.Region(0, 10))})) // prepped, never submitted
	if err := c.Close(); err != nil {
		t.Fatalf("Client.Close with I/O in flight: %v", err)
	}
	if _, err := c.NewBuffer(10, fs.BufferOpts{}); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("NewBuffer after Close: %v, want ErrClosed", err)
	}
	if n, err := s.rd.Wait(context.Background(), s.out, 1); n != 0 || !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Wait on a ring of a closed Client: %d, %v, want 0, ErrClosed", n, err)
	}
}

func testSeveralRings(t *testing.T, open Opener) {
	c := openC(t, open)
	const rings, per, size = 4, 32, 8192
	f := must(c.OpenFile("several", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644))
	var wg sync.WaitGroup
	errs := make(chan error, rings)
	for g := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				buf, err := c.NewBuffer(per*size, fs.BufferOpts{BlockSize: size})
				if err != nil {
					return err
				}
				for i := range buf.Bytes() {
					buf.Bytes()[i] = byte(g*31 + i/size)
				}
				r, err := c.NewRing(fs.RingOpts{Entries: 8, Op: fs.Write, Batch: fs.Batch{Mode: fs.AtMost, Depth: 4}})
				if err != nil {
					return err
				}
				defer r.Close()
				out := make([]fs.Completion, 8)
				done, next := 0, 0
				for done < per {
					for next < per {
						reg, _ := buf.Region(next*size, size)
						if _, err := r.Prep(fs.Req{File: f, Off: int64((g*per + next) * size), Buf: reg, Tag: uint64(next)}); errors.Is(err, fs.ErrRingFull) {
							break
						} else if err != nil {
							return err
						}
						next++
					}
					if err := r.Submit(); err != nil {
						return err
					}
					n, err := r.Wait(context.Background(), out, 1)
					if err != nil {
						return err
					}
					for _, cp := range out[:n] {
						if cp.Err != nil || cp.N != size {
							return fmt.Errorf("ring %d: %+v", g, cp)
						}
					}
					done += n
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, rings*per*size)
	if n, err := f.ReadAt(got, 0); n != len(got) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	for i, b := range got {
		g, rest := i/(per*size), i%(per*size)
		if b != byte(g*31+rest/size) {
			t.Fatalf("byte %d = %d, want %d", i, b, byte(g*31+rest/size))
		}
	}
}

func testReaderWriterAt(t *testing.T, open Opener) {
	c := openC(t, open)
	f := must(c.OpenFile("rwat", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644))
	data := make([]byte, 5<<20+123)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if n, err := f.WriteAt(data, 77); n != len(data) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got := make([]byte, len(data)+500)
	n, err := f.ReadAt(got, 77)
	if n != len(data) || !errors.Is(err, ioEOF) {
		t.Fatalf("ReadAt past end = %d, %v; want %d, io.EOF", n, err, len(data))
	}
	if !bytes.Equal(got[:n], data) {
		t.Fatal("ReadAt data differs")
	}
	if n, err := f.ReadAt(got[:1000], 1000); n != 1000 || err != nil {
		t.Fatalf("ReadAt inside = %d, %v", n, err)
	}
}

func testBatchCalls(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "batchcalls", 100*4096, 4)
	for i := range s.buf.Bytes() {
		s.buf.Bytes()[i] = byte(i / 4096)
	}
	reqs := make([]fs.Req, 100)
	for i := range reqs {
		reqs[i] = fs.Req{File: s.f, Off: int64(i) * 4096, Buf: must(s.buf.Region(i*4096, 4096)), Tag: uint64(1000 + i)}
	}
	cs, err := c.WriteBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	clear(s.buf.Bytes())
	cs2, err := c.ReadBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if cs[i].Tag != uint64(1000+i) || cs[i].N != 4096 || cs2[i].Tag != uint64(1000+i) || cs2[i].N != 4096 || cs2[i].Err != nil {
			t.Fatalf("request %d: write %+v read %+v", i, cs[i], cs2[i])
		}
	}
	for i, b := range s.buf.Bytes() {
		if b != byte(i/4096) {
			t.Fatalf("byte %d = %d", i, b)
		}
	}
	bad := append([]fs.Req(nil), reqs[:3]...)
	bad[2].File = nil
	if _, err := c.ReadBatch(context.Background(), bad); !errors.Is(err, fs.ErrUnregistered) {
		t.Fatalf("ReadBatch with nil file: %v, want ErrUnregistered", err)
	}
}
