package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
	"github.com/fireflyer-go/fireflyer/fs/fstest"
)

// memClient returns a Client on a mem store wrapped by errorfs with o.
func memClient(t *testing.T, o errorfs.Options) (*fs.Client, *errorfs.Backend, *fs.MemStore) {
	t.Helper()
	s := fs.NewMemStore()
	mem, err := fs.NewBackend("mem", fs.BackendOpts{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	efs := errorfs.Wrap(mem, o)
	c, err := fs.Open(context.Background(), "", fs.WithBackendValue(efs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, efs, s
}

// tagFault is the fault TestFaultsSurfaceInTheirCompletion injects into
// the I/O with tag in direction op.
func tagFault(op fs.Op, tag uint64) errorfs.Injection {
	var f errorfs.Injection
	switch tag % 6 {
	case 0:
		f.Err = syscall.EIO
	case 1:
		if op == fs.Read {
			f.Short = true
		}
	case 2:
		f.Latency = time.Duration(tag%5) * 100 * time.Microsecond
	case 3:
		if op == fs.Write {
			f.Err = syscall.ENOSPC
		}
	}
	return f
}

// TestFaultsSurfaceInTheirCompletion injects a fault chosen by tag into
// every I/O and checks each completion carries exactly its own fault, once.
func TestFaultsSurfaceInTheirCompletion(t *testing.T) {
	var mu sync.Mutex
	injected := map[uint64]errorfs.Injection{}
	record := errorfs.Rule{Match: func(i errorfs.Info) bool {
		mu.Lock()
		injected[i.Tag] = tagFault(i.Op, i.Tag)
		mu.Unlock()
		return false
	}}
	rules := []errorfs.Rule{record,
		{Match: func(i errorfs.Info) bool { return i.Tag%6 == 0 }, Inject: errorfs.Injection{Err: syscall.EIO}},
		{Op: errorfs.Reads, Match: func(i errorfs.Info) bool { return i.Tag%6 == 1 }, Inject: errorfs.Injection{Short: true}},
		{Op: errorfs.Writes, Match: func(i errorfs.Info) bool { return i.Tag%6 == 3 }, Inject: errorfs.Injection{Err: syscall.ENOSPC}},
	}
	for k := range uint64(5) {
		rules = append(rules, errorfs.Rule{Match: func(i errorfs.Info) bool { return i.Tag%6 == 2 && i.Tag%5 == k },
			Inject: errorfs.Injection{Latency: time.Duration(k) * 100 * time.Microsecond}})
	}
	c, efs, _ := memClient(t, errorfs.Options{Reorder: true})
	f, err := c.OpenFile("faulty", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	buf, _ := c.NewBuffer(64*4096, fs.BufferOpts{BlockSize: 4096})
	// Lay the file out with no faults, then turn them on.
	for i := range buf.Bytes() {
		buf.Bytes()[i] = byte(i)
	}
	if _, err := f.WriteAt(buf.Bytes(), 0); err != nil {
		t.Fatal(err)
	}
	efs.SetRules(rules...)
	for _, op := range []fs.Op{fs.Write, fs.Read} {
		r, err := c.NewRing(fs.RingOpts{Entries: 64, Op: op})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 64 {
			reg, _ := buf.Region(i*4096, 4096)
			if _, err := r.Prep(fs.Req{File: f, Off: int64(i) * 4096, Buf: reg, Tag: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		out := make([]fs.Completion, 64)
		seen := map[uint64]bool{}
		for len(seen) < 64 {
			n, err := r.Wait(context.Background(), out, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, cp := range out[:n] {
				if seen[cp.Tag] {
					t.Fatalf("%v tag %d completed twice", op, cp.Tag)
				}
				seen[cp.Tag] = true
				mu.Lock()
				ft, ok := injected[cp.Tag]
				mu.Unlock()
				if !ok {
					t.Fatalf("%v tag %d completed without reaching the store", op, cp.Tag)
				}
				wantN := int64(4096)
				if ft.Short {
					wantN = 2048
				}
				if ft.Err != 0 {
					if !errors.Is(cp.Err, ft.Err) || cp.N != 0 {
						t.Errorf("%v tag %d: N=%d err=%v, want injected %v", op, cp.Tag, cp.N, cp.Err, ft.Err)
					}
				} else if cp.Err != nil || cp.N != wantN {
					t.Errorf("%v tag %d: N=%d err=%v, want N=%d", op, cp.Tag, cp.N, cp.Err, wantN)
				}
			}
		}
		if _, err := r.Wait(context.Background(), out, 1); !errors.Is(err, fs.ErrWouldStall) {
			t.Fatalf("extra completion or no stall detection: %v", err)
		}
		clear(injected)
		r.Close()
	}
}

func TestProbabilisticFaultsCounted(t *testing.T) {
	c, efs, _ := memClient(t, errorfs.Options{Seed: 42})
	f, _ := c.OpenFile("p", os.O_RDWR|os.O_CREATE, 0o644)
	buf, _ := c.NewBuffer(1<<16, fs.BufferOpts{})
	if _, err := f.WriteAt(make([]byte, 1<<16), 0); err != nil {
		t.Fatal(err)
	}
	efs.SetRules(
		errorfs.Rule{Prob: 0.2, Inject: errorfs.Injection{Err: syscall.EIO}},
		errorfs.Rule{Op: errorfs.Reads, Prob: 0.2, Inject: errorfs.Injection{Short: true}},
	)
	r, _ := c.NewRing(fs.RingOpts{Entries: 16, Op: fs.Read})
	out := make([]fs.Completion, 16)
	var eio, short, ok int
	for round := 0; round < 50; round++ {
		for i := range 16 {
			reg, _ := buf.Region(i*4096, 4096)
			r.Prep(fs.Req{File: f, Off: int64(i) * 4096, Buf: reg, Tag: uint64(i)})
		}
		r.Submit()
		n, err := r.Wait(context.Background(), out, 16)
		if err != nil || n != 16 {
			t.Fatal(n, err)
		}
		for _, cp := range out[:n] {
			switch {
			case errors.Is(cp.Err, syscall.EIO):
				eio++
			case cp.Err == nil && cp.N == 2048:
				short++
			case cp.Err == nil && cp.N == 4096:
				ok++
			default:
				t.Fatalf("unexpected completion %+v", cp)
			}
		}
	}
	// 800 I/Os: EIO ~ 160, short ~ 0.8*0.2*800 = 128. Bounds are > 6 sigma.
	if eio < 100 || eio > 220 || short < 75 || short > 185 || eio+short+ok != 800 {
		t.Fatalf("eio=%d short=%d ok=%d", eio, short, ok)
	}
}

func TestCapacityENOSPC(t *testing.T) {
	c, _, store := memClient(t, errorfs.Options{})
	store.SetCapacity(8192)
	f, _ := c.OpenFile("cap", os.O_RDWR|os.O_CREATE, 0o644)
	if n, err := f.WriteAt(make([]byte, 8192), 0); n != 8192 || err != nil {
		t.Fatalf("WriteAt within capacity = %d, %v", n, err)
	}
	if _, err := f.WriteAt(make([]byte, 10), 8192); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt over capacity: %v, want ENOSPC", err)
	}
}

func TestReadAtRetriesShortReads(t *testing.T) {
	c, efs, _ := memClient(t, errorfs.Options{Seed: 1})
	f, _ := c.OpenFile("s", os.O_RDWR|os.O_CREATE, 0o644)
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	efs.SetRules(errorfs.Rule{Op: errorfs.Reads, Prob: 0.5, Inject: errorfs.Injection{Short: true}})
	got := make([]byte, len(data))
	if n, err := f.ReadAt(got, 0); n != len(data) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
}

func TestWaitDeadlineThenClose(t *testing.T) {
	c, _, _ := memClient(t, errorfs.Options{Rules: []errorfs.Rule{{Inject: errorfs.Injection{Latency: 300 * time.Millisecond}}}})
	f, _ := c.OpenFile("slow", os.O_RDWR|os.O_CREATE, 0o644)
	buf, _ := c.NewBuffer(4096, fs.BufferOpts{})
	r, _ := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Write})
	reg, _ := buf.Region(0, 4096)
	r.Prep(fs.Req{File: f, Buf: reg, Tag: 1})
	r.Submit()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	n, err := r.Wait(ctx, make([]fs.Completion, 1), 1)
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %d, %v; want 0, DeadlineExceeded", n, err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("Wait took %v past a 20ms deadline", d)
	}
	if err := f.Close(); !errors.Is(err, fs.ErrBusy) {
		t.Fatalf("File.Close with I/O in flight: %v, want ErrBusy", err)
	}
	if err := r.Close(); err != nil { // waits for the slow write
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkReadHole reads a hole (byte 20000 written, 0–8191 not) through a
// ring with ForbidReadHoles at priority prio and wants ENODATA.
func checkReadHole(t *testing.T, c *fs.Client, prio fs.Priority) {
	t.Helper()
	f, _ := c.OpenFile("h", os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := f.WriteAt([]byte{1}, 20000); err != nil {
		t.Fatal(err)
	}
	buf, _ := c.NewBuffer(8192, fs.BufferOpts{})
	r, err := c.NewRing(fs.RingOpts{Entries: 2, Op: fs.Read, Priority: prio, Flags: fs.ForbidReadHoles | fs.AllowReadUncommitted})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := buf.Region(0, 8192)
	r.Prep(fs.Req{File: f, Buf: reg})
	r.Submit()
	out := make([]fs.Completion, 1)
	if n, err := r.Wait(context.Background(), out, 1); n != 1 || err != nil || !errors.Is(out[0].Err, syscall.ENODATA) {
		t.Fatalf("read of a hole with ForbidReadHoles: %d %v %+v", n, err, out[0])
	}
}

func TestForbidReadHoles(t *testing.T) {
	c, _, _ := memClient(t, errorfs.Options{})
	checkReadHole(t, c, fs.High)
	p, _ := fs.Open(context.Background(), t.TempDir(), fs.WithBackend("posix"))
	defer p.Close()
	if _, err := p.NewRing(fs.RingOpts{Entries: 2, Flags: fs.ForbidReadHoles}); !errors.Is(err, fs.ErrUnsupported) {
		t.Fatalf("posix ForbidReadHoles: %v, want ErrUnsupported", err)
	}
}

func TestBadOptions(t *testing.T) {
	c, _, _ := memClient(t, errorfs.Options{})
	for _, o := range []fs.RingOpts{
		{Entries: 0}, {Entries: 40000}, {Entries: 4, Op: 7},
		{Entries: 4, Batch: fs.Batch{Mode: fs.AtMost, Depth: 0}},
		{Entries: 4, Batch: fs.Batch{Mode: 9}},
		{Entries: 4, Batch: fs.Batch{Timeout: -1}},
		{Entries: 4, Timeout: -1},
		{Entries: 4, Flags: 64},
	} {
		if _, err := c.NewRing(o); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("NewRing(%+v): %v, want ErrInvalid", o, err)
		}
	}
	if _, err := c.NewBuffer(0, fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("NewBuffer(0): %v", err)
	}
	if _, err := c.NewBuffer(4096, fs.BufferOpts{Mode: 0o4600}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("NewBuffer with setuid Mode: %v, want ErrInvalid", err)
	}
	heap := make([]byte, 3*4096)
	al := heap[(4096-int(uintptr(unsafe.Pointer(&heap[0]))%4096))%4096:][:4096]
	if _, err := c.WrapBuffer(al, fs.BufferOpts{Shared: true}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "Shared") {
		t.Errorf("WrapBuffer with Shared: %v, want ErrInvalid naming Shared", err)
	}
	if _, err := fs.Open(context.Background(), ".", fs.WithBackend("nope")); !errors.Is(err, fs.ErrUnsupported) {
		t.Errorf("unknown backend: %v", err)
	}
	if _, err := fs.Open(context.Background(), ".", fs.WithBackendValue(nil)); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("WithBackendValue(nil): %v, want ErrInvalid", err)
	}
	if _, err := fs.Open(context.Background(), "/does/not/exist", fs.WithBackend("posix")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if err := fmt.Errorf("wrapped: %w", fs.ErrRingFull); !errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EBADF) {
		t.Error("ErrRingFull must match EAGAIN only")
	}
}

func TestDirectIO(t *testing.T) {
	if fs.ODirect == 0 {
		t.Skip("no O_DIRECT on this platform")
	}
	for _, be := range []string{"posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			c := opener(be)(t)
			defer c.Close()
			f, err := c.OpenFile("direct", os.O_RDWR|os.O_CREATE|fs.ODirect, 0o644)
			if err != nil {
				t.Skipf("O_DIRECT not supported here: %v", err)
			}
			defer f.Close()
			mem, off := f.DirectAlign()
			if mem <= 0 || off <= 0 {
				t.Fatalf("DirectAlign = %d, %d", mem, off)
			}
			buf, _ := c.NewBuffer(1<<16, fs.BufferOpts{})
			for i := range buf.Bytes() {
				buf.Bytes()[i] = byte(i % 251)
			}
			w, _ := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Write})
			rd, _ := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Read})
			bad, _ := buf.Region(1, off)
			if _, err := w.Prep(fs.Req{File: f, Buf: bad}); !errors.Is(err, fs.ErrAlignment) {
				t.Fatalf("unaligned address: %v, want ErrAlignment", err)
			}
			reg, _ := buf.Region(0, 1<<16)
			if _, err := w.Prep(fs.Req{File: f, Off: 1, Buf: reg}); !errors.Is(err, fs.ErrAlignment) {
				t.Fatalf("unaligned offset: %v, want ErrAlignment", err)
			}
			out := make([]fs.Completion, 1)
			w.Prep(fs.Req{File: f, Off: 0, Buf: reg})
			w.Submit()
			if n, err := w.Wait(context.Background(), out, 1); n != 1 || err != nil || out[0].Err != nil || out[0].N != 1<<16 {
				t.Fatalf("direct write: %d %v %+v", n, err, out[0])
			}
			want := bytes.Clone(buf.Bytes())
			clear(buf.Bytes())
			rd.Prep(fs.Req{File: f, Off: 0, Buf: reg})
			rd.Submit()
			if n, err := rd.Wait(context.Background(), out, 1); n != 1 || err != nil || out[0].Err != nil || out[0].N != 1<<16 {
				t.Fatalf("direct read: %d %v %+v", n, err, out[0])
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatal("direct read back differs")
			}
		})
	}
}

func TestRegisterOSFile(t *testing.T) {
	for _, be := range []string{"posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			c := opener(be)(t)
			defer c.Close()
			dir := c.Root()
			osf, err := os.Create(dir + "/reg")
			if err != nil {
				t.Fatal(err)
			}
			osf.WriteString("hello, world")
			f, err := c.Register(osf)
			osf.Close() // the File holds its own descriptor
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5)
			if n, err := f.ReadAt(got, 7); n != 5 || err != nil || string(got) != "world" {
				t.Fatalf("ReadAt = %d %v %q", n, err, got)
			}
		})
	}
	c, _, _ := memClient(t, errorfs.Options{})
	if _, err := c.Register(os.Stdin); !errors.Is(err, fs.ErrUnsupported) {
		t.Fatalf("mem Register: %v", err)
	}
}

// TestZeroAllocsPerIO checks that Prep, Submit and Wait do not allocate in
// steady state on every backend.
func TestZeroAllocsPerIO(t *testing.T) {
	for _, be := range []string{"mem", "posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			c := opener(be)(t)
			defer c.Close()
			f, _ := c.OpenFile("allocs", os.O_RDWR|os.O_CREATE, 0o644)
			buf, _ := c.NewBuffer(16*4096, fs.BufferOpts{})
			if _, err := f.WriteAt(buf.Bytes(), 0); err != nil {
				t.Fatal(err)
			}
			r, _ := c.NewRing(fs.RingOpts{Entries: 16, Op: fs.Read})
			out := make([]fs.Completion, 16)
			regs := make([]fs.Region, 16)
			for i := range regs {
				regs[i], _ = buf.Region(i*4096, 4096)
			}
			ctx := context.Background()
			round := func() {
				for i := range 16 {
					if _, err := r.Prep(fs.Req{File: f, Off: int64(i) * 4096, Buf: regs[i], Tag: uint64(i)}); err != nil {
						t.Fatal(err)
					}
				}
				if err := r.Submit(); err != nil {
					t.Fatal(err)
				}
				for got := 0; got < 16; {
					n, err := r.Wait(ctx, out, 16-got)
					if err != nil {
						t.Fatal(err)
					}
					got += n
				}
			}
			round()
			if a := testing.AllocsPerRun(50, round); a != 0 {
				t.Fatalf("%v allocations per 16 I/Os, want 0", a)
			}
		})
	}
}

func FuzzRequestSequence(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 16, 7, 0, 0, 0, 0, 16, 0})
	f.Add([]byte{3, 10, 0, 50, 0, 1, 0, 8, 0, 100, 0, 0, 2, 255, 255, 255, 255, 0})
	f.Add(bytes.Repeat([]byte{1, 3, 1, 200, 3, 9, 0, 2, 1, 100, 9, 0}, 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops := fstest.DecodeOps(data)
		if len(ops) == 0 {
			return
		}
		c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend("uring"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fstest.CheckSequence(t, c, fstest.Oracle(t), ops)
	})
}

// TestOffsetOverflow checks that a request whose end offset overflows
// int64 fails with EINVAL on every backend, as the kernel's rw_verify_area
// does for posix and uring, and changes nothing. The mem oracle used to
// accept such a write (storing it at a wrapped-around negative page) and
// report success.
func TestOffsetOverflow(t *testing.T) {
	for _, be := range []string{"mem", "posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			c := opener(be)(t)
			defer c.Close()
			f, err := c.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("head"), 0); err != nil {
				t.Fatal(err)
			}
			const maxOff = 1<<63 - 1
			if n, err := f.WriteAt(make([]byte, 4), maxOff-2); n != 0 || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("WriteAt(4 bytes, MaxInt64-2) = %d, %v; want 0, EINVAL", n, err)
			}
			if n, err := f.ReadAt(make([]byte, 4096), maxOff-10); n != 0 || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("ReadAt(4096 bytes, MaxInt64-10) = %d, %v; want 0, EINVAL", n, err)
			}
			if sz, err := f.Size(); err != nil || sz != 4 {
				t.Errorf("size %d, %v after the failed write; want 4", sz, err)
			}
		})
	}
}
