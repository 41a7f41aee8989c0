package errorfs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
	"github.com/fireflyer-go/fireflyer/fs/fstest"
)

func open(t *testing.T, be string, o errorfs.Options) (*fs.Client, *errorfs.Backend) {
	t.Helper()
	root := t.TempDir()
	inner, err := fs.NewBackend(be, fs.BackendOpts{Root: root, Workers: 2})
	if err != nil {
		t.Skipf("%s: %v", be, err)
	}
	efs := errorfs.Wrap(inner, o)
	c, err := fs.Open(context.Background(), root, fs.WithBackendValue(efs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, efs
}

// run does one I/O of n bytes at off on a fresh ring and returns its
// completion.
func run(t *testing.T, c *fs.Client, f *fs.File, op fs.Op, off int64, n int) fs.Completion {
	t.Helper()
	b, err := c.NewBuffer(n, fs.BufferOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range b.Bytes() {
		b.Bytes()[i] = byte(i + 1)
	}
	r, err := c.NewRing(fs.RingOpts{Entries: 1, Op: op})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reg, _ := b.Region(0, n)
	if _, err := r.Prep(fs.Req{File: f, Off: off, Buf: reg, Tag: 9}); err != nil {
		t.Fatal(err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	out := make([]fs.Completion, 1)
	if k, err := r.Wait(context.Background(), out, 1); k != 1 || err != nil {
		t.Fatalf("Wait = %d, %v", k, err)
	}
	return out[0]
}

// TestRules checks each way a rule narrows its match, on a real backend.
func TestRules(t *testing.T) {
	for _, be := range []string{"posix", "uring", "mem"} {
		t.Run(be, func(t *testing.T) {
			c, efs := open(t, be, errorfs.Options{})
			data, _ := c.OpenFile("data.bin", os.O_RDWR|os.O_CREATE, 0o644)
			tmp, _ := c.OpenFile("data.tmp", os.O_RDWR|os.O_CREATE, 0o644)
			if _, err := data.WriteAt(make([]byte, 1<<16), 0); err != nil {
				t.Fatal(err)
			}
			efs.SetRules(errorfs.Rule{Op: errorfs.Writes, Path: "*.tmp", Inject: errorfs.Injection{Err: syscall.ENOSPC}})
			if cp := run(t, c, tmp, fs.Write, 0, 4096); !errors.Is(cp.Err, syscall.ENOSPC) || cp.N != 0 {
				t.Errorf("write to *.tmp: %+v, want ENOSPC", cp)
			}
			if cp := run(t, c, data, fs.Write, 0, 4096); cp.Err != nil || cp.N != 4096 {
				t.Errorf("write to data.bin: %+v, want 4096 bytes", cp)
			}
			if cp := run(t, c, tmp, fs.Read, 0, 4096); cp.Err != nil {
				t.Errorf("read of *.tmp: %+v, want no fault", cp)
			}
			efs.SetRules(errorfs.Rule{Off: 8192, Len: 4096, Inject: errorfs.Injection{Err: syscall.EIO}})
			for _, c0 := range []struct {
				off  int64
				want error
			}{{0, nil}, {4096, nil}, {6000, syscall.EIO}, {12287, syscall.EIO}, {12288, nil}} {
				if cp := run(t, c, data, fs.Read, c0.off, 4096); !errors.Is(cp.Err, c0.want) || c0.want == nil && cp.Err != nil {
					t.Errorf("read at %d: %+v, want %v", c0.off, cp, c0.want)
				}
			}
			efs.SetRules(errorfs.Rule{Op: errorfs.Reads, Nth: 2, Inject: errorfs.Injection{Err: syscall.EIO}})
			for i, want := range []error{nil, syscall.EIO, nil, nil} {
				if cp := run(t, c, data, fs.Read, 0, 4096); !errors.Is(cp.Err, want) || want == nil && cp.Err != nil {
					t.Errorf("read %d: %+v, want %v", i+1, cp, want)
				}
			}
			// A short write really writes half: the file then holds it.
			efs.SetRules(errorfs.Rule{Op: errorfs.Writes, Inject: errorfs.Injection{Short: true}})
			short, _ := c.OpenFile("short", os.O_RDWR|os.O_CREATE, 0o644)
			if cp := run(t, c, short, fs.Write, 0, 4096); cp.Err != nil || cp.N != 2048 {
				t.Errorf("short write: %+v, want 2048 bytes", cp)
			}
			if sz, _ := short.Size(); sz != 2048 {
				t.Errorf("after a short write the file has %d bytes, want 2048", sz)
			}
			efs.SetRules(errorfs.Rule{Inject: errorfs.Injection{Latency: 30 * time.Millisecond}})
			start := time.Now()
			if cp := run(t, c, data, fs.Read, 0, 4096); cp.Err != nil || cp.N != 4096 {
				t.Errorf("delayed read: %+v", cp)
			}
			if d := time.Since(start); d < 30*time.Millisecond {
				t.Errorf("delayed read completed after %v, want >= 30ms", d)
			}
			efs.SetRules()
			got := make([]byte, 4096)
			if n, err := data.ReadAt(got, 0); n != 4096 || err != nil || !bytes.Equal(got[:4], []byte{1, 2, 3, 4}) {
				t.Errorf("ReadAt after faults: %d %v % x", n, err, got[:4])
			}
			if n := efs.Counts(); n.Errors != 4 || n.Shorts != 1 || n.Delayed != 1 {
				t.Errorf("Counts = %+v, want 4 errors, 1 short, 1 delayed", n)
			}
		})
	}
}

// TestConformanceUnderLatency certifies the wrapper itself: random
// latencies (and so completions out of order) and reordered batches over
// posix still pass the whole suite.
func TestConformanceUnderLatency(t *testing.T) {
	fstest.RunBackend(t, func(t *testing.T, root string) fs.Backend {
		be, err := fs.NewBackend("posix", fs.BackendOpts{Root: root, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		return errorfs.Wrap(be, errorfs.Options{Seed: 11, Reorder: true, Rules: []errorfs.Rule{
			{Prob: 0.5, Inject: errorfs.Injection{Latency: 300 * time.Microsecond}},
			{Prob: 0.3, Inject: errorfs.Injection{Latency: 100 * time.Microsecond}},
		}})
	})
}

// TestWrapNil: a wrapper around a nil backend is refused by fs.Open with
// fs.ErrInvalid (it used to panic in Open), and closing it does nothing.
func TestWrapNil(t *testing.T) {
	w := errorfs.Wrap(nil, errorfs.Options{})
	if c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackendValue(w)); !errors.Is(err, fs.ErrInvalid) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Open(Wrap(nil)): err %v; want fs.ErrInvalid", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestBadPattern: a rule whose Path is not a valid filepath.Match pattern
// would never match, so the test using it would pass without any fault
// injected; the wrapper refuses to open files instead, with an error
// wrapping fs.ErrInvalid and filepath.ErrBadPattern, until SetRules fixes it.
func TestBadPattern(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := fs.NewBackend("posix", fs.BackendOpts{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	w := errorfs.Wrap(be, errorfs.Options{Rules: []errorfs.Rule{{Path: "[", Inject: errorfs.Injection{Err: syscall.EIO}}}})
	c, err := fs.Open(ctx, dir, fs.WithBackendValue(w))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.OpenFile("x.bin", os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, fs.ErrInvalid) || !errors.Is(err, filepath.ErrBadPattern) {
		t.Fatalf("OpenFile with a malformed rule: err %v; want fs.ErrInvalid and filepath.ErrBadPattern", err)
	}
	w.SetRules(errorfs.Rule{Path: "*.bin", Inject: errorfs.Injection{Err: syscall.EIO}})
	f, err := c.OpenFile("x.bin", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("OpenFile after SetRules: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("abcd"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("WriteAt under the fixed rule: err %v; want EIO", err)
	}
}

// bare is a Backend with none of the optional calls: the wrapper must
// then report them unsupported rather than pretend.
type bare struct{ fs.Backend }

func TestKillAndHang(t *testing.T) {
	c, efs := open(t, "mem", errorfs.Options{Rules: []errorfs.Rule{
		{Match: func(i errorfs.Info) bool { return i.Tag == 2 }, Inject: errorfs.Injection{Hang: true}},
		{Match: func(i errorfs.Info) bool { return i.Tag == 3 }, Inject: errorfs.Injection{Latency: time.Hour}},
	}})
	f, _ := c.OpenFile("k", os.O_RDWR|os.O_CREATE, 0o644)
	b, _ := c.NewBuffer(3*4096, fs.BufferOpts{})
	r, _ := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Write})
	for tag := range 3 {
		reg, _ := b.Region(tag*4096, 4096)
		r.Prep(fs.Req{File: f, Off: int64(tag) * 4096, Buf: reg, Tag: uint64(tag + 1)})
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	out := make([]fs.Completion, 4)
	if n, err := r.Wait(context.Background(), out, 1); n != 1 || err != nil || out[0].Tag != 1 || out[0].Err != nil {
		t.Fatalf("the unhindered write: %d %v %+v", n, err, out[0])
	}
	efs.Kill(0) // ignored
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	if n, err := r.Wait(ctx, out, 1); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung and delayed writes before Kill: %d %v", n, err)
	}
	cancel()
	efs.Kill(syscall.ENOTCONN)
	n, err := r.Wait(context.Background(), out, 2)
	if n != 2 || err != nil {
		t.Fatalf("after Kill: %d %v", n, err)
	}
	for _, cp := range out[:2] {
		if (cp.Tag != 2 && cp.Tag != 3) || !errors.Is(cp.Err, syscall.ENOTCONN) {
			t.Errorf("after Kill: %+v, want tags 2 and 3 failing with ENOTCONN", cp)
		}
	}
	reg, _ := b.Region(0, 4096)
	r.Prep(fs.Req{File: f, Buf: reg, Tag: 9})
	if err := r.Submit(); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("Submit after Kill: %v, want ENOTCONN", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	mem, _ := fs.NewBackend("mem", fs.BackendOpts{})
	w := errorfs.Wrap(bare{mem}, errorfs.Options{})
	defer w.Close()
	if _, err := w.WrapBuffer(nil, fs.BufferSpec{}); !errors.Is(err, fs.ErrUnsupported) {
		t.Errorf("WrapBuffer over a backend without it: %v", err)
	}
	if _, _, err := w.OpenBuffer(fs.BufferSpec{}); !errors.Is(err, fs.ErrUnsupported) {
		t.Errorf("OpenBuffer over a backend without it: %v", err)
	}
	if err := w.Hardlink("a", "b"); !errors.Is(err, fs.ErrUnsupported) {
		t.Errorf("Hardlink over a backend without it: %v", err)
	}
}
