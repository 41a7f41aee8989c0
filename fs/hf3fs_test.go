//go:build linux

package fs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
	"github.com/fireflyer-go/fireflyer/fs/fstest"
)

// hf3fsOpener returns Clients on the hf3fs backend, each with its own
// fake daemon and mount, whose faults are set by faults when not nil.
func hf3fsOpener(faults func(fs.DaemonIO) fs.DaemonFault) fstest.Opener {
	return func(t *testing.T) *fs.Client {
		d := fs.NewFakeDaemon(t, nil)
		d.SetFaults(faults)
		c, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(d.Opts()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func TestConformanceHF3FS(t *testing.T) {
	t.Run("hf3fs", func(t *testing.T) { fstest.Run(t, hf3fsOpener(nil)) })
	t.Run("hf3fs with latency", func(t *testing.T) {
		fstest.Run(t, hf3fsOpener(func(fs.DaemonIO) fs.DaemonFault {
			return fs.DaemonFault{Delay: 100 * time.Microsecond}
		}))
	})
}

// TestConformanceErrorfsOverHF3FS: the fault wrapper passes hf3fs's shared
// buffers and inode-addressed files through unchanged, with reordering and
// latency on top.
func TestConformanceErrorfsOverHF3FS(t *testing.T) {
	fstest.Run(t, func(t *testing.T) *fs.Client {
		d := fs.NewFakeDaemon(t, nil)
		be, err := fs.NewBackend("hf3fs", fs.BackendOpts{Root: d.Mount(), HF3FS: d.Opts()})
		if err != nil {
			t.Fatal(err)
		}
		efs := errorfs.Wrap(be, errorfs.Options{Seed: 9, Reorder: true,
			Rules: []errorfs.Rule{{Prob: 0.3, Inject: errorfs.Injection{Latency: 200 * time.Microsecond}}}})
		c, err := fs.Open(context.Background(), d.Mount(), fs.WithBackendValue(efs))
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func newHF3FS(t testing.TB, store *fs.MemStore, extra ...fs.Option) (*fs.FakeDaemon, *fs.Client) {
	t.Helper()
	d := fs.NewFakeDaemon(t, store)
	c, err := fs.Open(context.Background(), d.Mount(), append([]fs.Option{fs.WithBackend("hf3fs"), fs.WithHF3FS(d.Opts())}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func TestHF3FSAutoPicksOnMount(t *testing.T) {
	d := fs.NewFakeDaemon(t, nil)
	sub := filepath.Join(d.Mount(), "data")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := fs.Open(context.Background(), sub, fs.WithHF3FS(d.Opts()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Backend() != "hf3fs" {
		t.Fatalf("auto on a 3FS mount picked %q (%s)", c.Backend(), c.Features().Note)
	}
	// A root outside the mount does not pick hf3fs.
	c2, err := fs.Open(context.Background(), t.TempDir(), fs.WithHF3FS(d.Opts()))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Backend() == "hf3fs" {
		t.Fatal("auto picked hf3fs for a root outside the mount")
	}
}

func TestHF3FSNotOnMount(t *testing.T) {
	_, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend("hf3fs"))
	if !errors.Is(err, fs.ErrNotHF3FS) || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("hf3fs on a plain directory: %v, want ErrNotHF3FS", err)
	}
	// A directory named as mount point without 3fs-virt is refused too.
	_, err = fs.Open(context.Background(), t.TempDir(), fs.WithBackend("hf3fs"), fs.WithHF3FS(fs.HF3FSOpts{MountPoint: "/"}))
	if !errors.Is(err, fs.ErrNotHF3FS) {
		t.Fatalf("mount without 3fs-virt: %v, want ErrNotHF3FS", err)
	}
}

func TestHF3FSRegisterRefused(t *testing.T) {
	d := fs.NewFakeDaemon(t, nil)
	o := d.Opts()
	o.CheckFile = func(int) error { return errors.New("magic ioctl: ENOTTY") }
	c, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(o))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.OpenFile("x", os.O_RDWR|os.O_CREATE, 0o644)
	if !errors.Is(err, fs.ErrNotHF3FS) {
		t.Fatalf("OpenFile with a failing check: %v, want ErrNotHF3FS", err)
	}
	// The default check (the ioctl) refuses a file on an ordinary file
	// system.
	o.CheckFile = nil
	c2, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(o))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.OpenFile("y", os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, fs.ErrNotHF3FS) {
		t.Fatalf("OpenFile on a non-3FS file with the ioctl check: %v, want ErrNotHF3FS", err)
	}
}

func TestHF3FSCleanupOnClose(t *testing.T) {
	d, c := newHF3FS(t, nil)
	f, err := c.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	b, err := c.NewBuffer(1<<20, fs.BufferOpts{BlockSize: 1 << 18})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewRing(fs.RingOpts{Entries: 8, Op: fs.Read, Priority: fs.High, Flags: fs.ForbidReadHoles}); err != nil {
		t.Fatal(err)
	}
	reg := d.Registered()
	var sawBlock, sawRing bool
	for _, k := range reg {
		sawBlock = sawBlock || strings.HasSuffix(k, ".b262144")
		sawRing = sawRing || strings.HasSuffix(k, ".r0.ph.t0.f10")
	}
	if !sawBlock || !sawRing {
		t.Fatalf("registered keys %q lack the buffer's .b262144 or the ring's .r0.ph.t0.f10", reg)
	}
	_ = b
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(d.Registered()) == 0 }, "daemon still holds %q", d.Registered)
	ents, err := os.ReadDir(filepath.Join(d.Mount(), "3fs-virt", "iovs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "submit-ios") {
			t.Errorf("iovs still holds %s after Close", e.Name())
		}
	}
	for p := range d.ShmFiles() {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("shm file %s left after Close: %v", p, err)
		}
	}
}

func waitFor(t *testing.T, ok func() bool, msg string, arg func() []string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf(msg, arg())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHF3FSShmMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		want os.FileMode
	}{{"default 0600", 0, 0o600}, {"0660 for a daemon in the group", 0o660, 0o660}} {
		t.Run(tc.name, func(t *testing.T) {
			d := fs.NewFakeDaemon(t, nil)
			o := d.Opts()
			o.ShmMode = tc.mode
			c, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(o))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.NewBuffer(4096, fs.BufferOpts{}); err != nil {
				t.Fatal(err)
			}
			files := d.ShmFiles()
			if len(files) != 1 {
				t.Fatalf("shm files %v, want 1", files)
			}
			for p, m := range files {
				if m != tc.want {
					t.Errorf("%s mode %v, want %v", p, m, tc.want)
				}
			}
		})
	}
	d := fs.NewFakeDaemon(t, nil)
	o := d.Opts()
	o.ShmMode = os.ModeSetuid | 0o600
	if _, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(o)); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ShmMode with setuid: %v, want ErrInvalid", err)
	}
}

func TestHF3FSSubmitLinkValidated(t *testing.T) {
	for _, target := range []string{"/etc/passwd", "/dev/shm/../shm/sem.x", "/dev/shm/not-a-sem", "relative/sem.x"} {
		t.Run(target, func(t *testing.T) {
			d, c := newHF3FS(t, nil)
			defer c.Close()
			link := filepath.Join(d.Mount(), "3fs-virt", "iovs", "submit-ios.pl")
			os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			if _, err := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Read, Priority: fs.Low}); !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("submit-ios.pl -> %s: NewRing %v, want ErrInvalid", target, err)
			}
		})
	}
}

func TestHF3FSFaultsSurface(t *testing.T) {
	d, c := newHF3FS(t, nil)
	defer c.Close()
	f, err := c.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
		t.Fatal(err)
	}
	d.SetFaults(func(io fs.DaemonIO) fs.DaemonFault {
		if io.Tag == 7 {
			return fs.DaemonFault{Err: syscall.EIO}
		}
		return fs.DaemonFault{}
	})
	b, _ := c.NewBuffer(8192, fs.BufferOpts{})
	r, _ := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Read})
	for i, tag := range []uint64{6, 7} {
		reg, _ := b.Region(i*4096, 4096)
		if _, err := r.Prep(fs.Req{File: f, Off: int64(i) * 4096, Buf: reg, Tag: tag}); err != nil {
			t.Fatal(err)
		}
	}
	r.Submit()
	out := make([]fs.Completion, 2)
	n, err := r.Wait(context.Background(), out, 2)
	if err != nil || n != 2 {
		t.Fatalf("Wait = %d, %v", n, err)
	}
	for _, o := range out {
		switch o.Tag {
		case 6:
			if o.Err != nil || o.N != 4096 {
				t.Errorf("tag 6: %+v, want 4096 bytes", o)
			}
		case 7:
			if !errors.Is(o.Err, syscall.EIO) || o.N != 0 {
				t.Errorf("tag 7: %+v, want EIO", o)
			}
		default:
			t.Errorf("unexpected completion %+v", o)
		}
	}
}

func TestHF3FSForbidReadHoles(t *testing.T) {
	_, c := newHF3FS(t, nil)
	defer c.Close()
	checkReadHole(t, c, fs.Low)
}

func TestHF3FSRegisterOSFile(t *testing.T) {
	d, c := newHF3FS(t, nil)
	defer c.Close()
	w, err := c.OpenFile("reg", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("hello, world"), 0); err != nil {
		t.Fatal(err)
	}
	osf, err := os.Open(filepath.Join(d.Mount(), "reg"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Register(osf)
	osf.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if n, err := f.ReadAt(got, 7); n != 5 || err != nil || string(got) != "world" {
		t.Fatalf("ReadAt = %d %v %q", n, err, got)
	}
	other, err := os.Create(filepath.Join(t.TempDir(), "elsewhere"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if fi, err := os.Stat(d.Mount()); err == nil {
		if oi, err := other.Stat(); err == nil && sameDev(fi, oi) {
			t.Skip("temp dirs share a device; cannot test a foreign file")
		}
	}
	if _, err := c.Register(other); !errors.Is(err, fs.ErrNotHF3FS) {
		t.Fatalf("Register of a file off the mount: %v, want ErrNotHF3FS", err)
	}
}

func sameDev(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev
}

func FuzzHF3FSRequestSequence(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 16, 7, 0, 0, 0, 0, 16, 0})
	f.Add([]byte{3, 10, 0, 50, 0, 1, 0, 8, 0, 100, 0, 0, 2, 255, 255, 255, 255, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ops := fstest.DecodeOps(data)
		if len(ops) == 0 {
			return
		}
		d := fs.NewFakeDaemon(t, nil)
		c, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(d.Opts()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fstest.CheckSequence(t, c, fstest.Oracle(t), ops)
	})
}

// BenchmarkHF3FSRandRead4K measures 4 KiB random reads at depth 64 through
// the USRBIO shared-memory protocol against the fake daemon (which serves
// from a MemStore), with the mem backend on the same store contents as the
// anchor: the ratio is the cost of the shared rings, semaphores and the
// daemon hop, not of any storage.
func BenchmarkHF3FSRandRead4K(b *testing.B) {
	const depth, size = 64, 16 << 20
	run := func(b *testing.B, c *fs.Client) {
		f, err := c.OpenFile("bench", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
			b.Fatal(err)
		}
		buf, _ := c.NewBuffer(depth*4096, fs.BufferOpts{BlockSize: 4096})
		r, _ := c.NewRing(fs.RingOpts{Entries: depth, Op: fs.Read})
		out := make([]fs.Completion, depth)
		regs := make([]fs.Region, depth)
		for i := range regs {
			regs[i], _ = buf.Region(i*4096, 4096)
		}
		x := uint64(1)
		next := func() int64 {
			x = x*6364136223846793005 + 1442695040888963407
			return int64(x>>40) % (size / 4096) * 4096
		}
		ctx := context.Background()
		for k := range depth {
			r.Prep(fs.Req{File: f, Off: next(), Buf: regs[k], Tag: uint64(k)})
		}
		r.Submit()
		b.ResetTimer()
		for done := 0; done < b.N; {
			n, err := r.Wait(ctx, out, 1)
			if err != nil {
				b.Fatal(err)
			}
			for _, cp := range out[:n] {
				if cp.Err != nil || cp.N != 4096 {
					b.Fatalf("completion %+v", cp)
				}
				r.Prep(fs.Req{File: f, Off: next(), Buf: regs[cp.Tag], Tag: cp.Tag})
			}
			r.Submit()
			done += n
		}
		b.StopTimer()
		r.Wait(ctx, out, depth)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
	}
	b.Run("anchor=mem", func(b *testing.B) {
		c, err := fs.Open(context.Background(), "", fs.WithBackend("mem"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c)
	})
	b.Run("hf3fs+fakedaemon", func(b *testing.B) {
		_, c := newHF3FS(b, nil)
		defer c.Close()
		run(b, c)
	})
}

func TestHF3FSDaemonRefusal(t *testing.T) {
	d := fs.NewFakeDaemon(t, nil)
	o := d.Opts()
	refuse := errors.New("symlink: EINVAL")
	o.Registered = func(link string) error {
		if strings.Contains(filepath.Base(link), ".w") {
			return refuse
		}
		return nil
	}
	c, err := fs.Open(context.Background(), d.Mount(), fs.WithBackend("hf3fs"), fs.WithHF3FS(o))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.NewRing(fs.RingOpts{Entries: 4, Op: fs.Write}); !errors.Is(err, refuse) {
		t.Fatalf("NewRing refused by the daemon: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Mount(), "3fs-virt", "iovs"))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".w") {
			t.Errorf("refused key %s left in iovs", e.Name())
		}
	}
}
