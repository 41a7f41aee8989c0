//go:build linux

package fs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
)

// hangTag is the first tag of the reads the dying server never answers.
const hangTag = 4

// dying is a Client whose I/O server can hang and die: kill makes it die.
type dying struct {
	c    *fs.Client
	kill func()
}

// dyingServers returns, for each case, a Client whose reads with tag >=
// hangTag never complete until kill: the fake 3FS daemon itself, and the
// fault wrapper (Hang, then Kill) over every backend.
func dyingServers() map[string]func(t *testing.T) dying {
	hang := errorfs.Rule{Op: errorfs.Reads, Match: func(i errorfs.Info) bool { return i.Tag >= hangTag }, Inject: errorfs.Injection{Hang: true}}
	wrapped := func(name string) func(t *testing.T) dying {
		return func(t *testing.T) dying {
			root := t.TempDir()
			o := fs.BackendOpts{Root: root}
			if name == "hf3fs" {
				d := fs.NewFakeDaemon(t, nil)
				root = d.Mount()
				o = fs.BackendOpts{Root: root, HF3FS: d.Opts()}
			}
			be, err := fs.NewBackend(name, o)
			if errors.Is(err, fs.ErrUnsupported) {
				t.Skipf("%s: %v", name, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			efs := errorfs.Wrap(be, errorfs.Options{Rules: []errorfs.Rule{hang}})
			c, err := fs.Open(context.Background(), root, fs.WithBackendValue(efs))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { efs.Kill(syscall.ENOTCONN); c.Close() })
			return dying{c: c, kill: func() { efs.Kill(syscall.ENOTCONN) }}
		}
	}
	return map[string]func(t *testing.T) dying{
		"hf3fs daemon killed": func(t *testing.T) dying {
			d, c := newHF3FS(t, nil)
			d.SetFaults(func(io fs.DaemonIO) fs.DaemonFault {
				if io.Op == fs.Read && io.Tag >= hangTag {
					return fs.DaemonFault{Delay: time.Hour} // ends when the daemon dies
				}
				return fs.DaemonFault{}
			})
			t.Cleanup(func() { d.Kill(); c.Close() })
			return dying{c: c, kill: d.Kill}
		},
		"errorfs(mem)":   wrapped("mem"),
		"errorfs(posix)": wrapped("posix"),
		"errorfs(uring)": wrapped("uring"),
		"errorfs(hf3fs)": wrapped("hf3fs"),
	}
}

// dyingSetup writes 8 pages of a pattern to a file and returns it, a
// buffer and a read ring whose reads with tags 0..3 have completed (once
// each, with the file's bytes) and whose reads 4..7 are in flight and
// hung. The two halves go in separate batches: a 3FS job completes as a
// whole.
func dyingSetup(t *testing.T, c *fs.Client, ro fs.RingOpts) (*fs.File, *fs.Buffer, *fs.Ring, []byte) {
	t.Helper()
	f, err := c.OpenFile("victim", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8*4096)
	for i := range want {
		want[i] = byte(i*13 + i>>12)
	}
	if _, err := f.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	buf, err := c.NewBuffer(len(want), fs.BufferOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ro.Entries, ro.Op = 8, fs.Read
	r, err := c.NewRing(ro)
	if err != nil {
		t.Fatal(err)
	}
	submit := func(from, to int) {
		for k := from; k < to; k++ {
			reg, _ := buf.Region(k*4096, 4096)
			if _, err := r.Prep(fs.Req{File: f, Off: int64(k) * 4096, Buf: reg, Tag: uint64(k)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
	}
	submit(0, hangTag)
	out := make([]fs.Completion, 8)
	seen := map[uint64]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(seen) < hangTag {
		n, err := r.Wait(ctx, out, 1)
		if err != nil {
			t.Fatalf("Wait for the reads that complete: %v", err)
		}
		for _, cp := range out[:n] {
			if cp.Tag >= hangTag || seen[cp.Tag] || cp.Err != nil || cp.N != 4096 {
				t.Fatalf("completion %+v before the death (seen before: %v)", cp, seen[cp.Tag])
			}
			seen[cp.Tag] = true
		}
	}
	if !bytes.Equal(buf.Bytes()[:hangTag*4096], want[:hangTag*4096]) {
		t.Fatal("completed reads did not deliver the file's bytes")
	}
	submit(hangTag, 8)
	return f, buf, r, want
}

// TestDaemonDeathWait kills the I/O server with reads in flight: the
// reads it finished are delivered once with their data, the others fail
// once with ENOTCONN soon after the death (no ring timeout set), later
// submissions fail, and Close returns promptly.
func TestDaemonDeathWait(t *testing.T) {
	for name, mk := range dyingServers() {
		t.Run(name, func(t *testing.T) {
			d := mk(t)
			f, buf, r, _ := dyingSetup(t, d.c, fs.RingOpts{})
			out := make([]fs.Completion, 8)
			seen := map[uint64]bool{0: true, 1: true, 2: true, 3: true}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			time.Sleep(10 * time.Millisecond) // let the hung reads reach the server
			if n, err := r.Wait(ctx, out, 0); n != 0 || err != nil {
				t.Fatalf("poll with hung reads: %d, %v; want nothing yet", n, err)
			}
			d.kill()
			start := time.Now()
			for len(seen) < 8 {
				n, err := r.Wait(ctx, out, 8-len(seen))
				if err != nil {
					t.Fatalf("Wait after the death: %v (after %v)", err, time.Since(start))
				}
				for _, cp := range out[:n] {
					if cp.Tag < hangTag || seen[cp.Tag] || !errors.Is(cp.Err, syscall.ENOTCONN) || cp.N != 0 {
						t.Fatalf("completion %+v after the death (seen before: %v), want ENOTCONN once", cp, seen[cp.Tag])
					}
					seen[cp.Tag] = true
				}
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("lost I/O took %v to fail after the death", el)
			}
			if n, err := r.Wait(ctx, out, 1); n != 0 || !errors.Is(err, fs.ErrWouldStall) {
				t.Errorf("Wait with nothing in flight: %d, %v; want ErrWouldStall (no completion twice)", n, err)
			}
			if st := r.Stats(); st.Completed != 8 || st.Dispatched != 8 {
				t.Errorf("stats %+v: want 8 dispatched, 8 completed", st)
			}
			reg, _ := buf.Region(0, 4096)
			if _, err := r.Prep(fs.Req{File: f, Buf: reg, Tag: 99}); err != nil {
				t.Fatal(err)
			}
			if err := r.Submit(); !errors.Is(err, syscall.ENOTCONN) {
				t.Errorf("Submit after the death: %v, want ENOTCONN", err)
			}
			start = time.Now()
			if err := r.Close(); err != nil {
				t.Errorf("Ring.Close after the death: %v", err)
			}
			if err := d.c.Close(); err != nil {
				t.Errorf("Client.Close after the death: %v", err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("Close took %v", el)
			}
		})
	}
}

// TestDaemonDeathClose kills the server and closes the ring with all its
// reads in flight, without a Wait: Close returns promptly, and the
// Buffer and File can then be closed.
func TestDaemonDeathClose(t *testing.T) {
	for name, mk := range dyingServers() {
		t.Run(name, func(t *testing.T) {
			d := mk(t)
			f, buf, r, _ := dyingSetup(t, d.c, fs.RingOpts{})
			time.Sleep(20 * time.Millisecond)
			d.kill()
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- r.Close() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Ring.Close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Ring.Close with I/O in flight on a dead server did not return in 10 s")
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("Ring.Close took %v", el)
			}
			if err := buf.Close(); err != nil {
				t.Errorf("Buffer.Close after the ring drained: %v", err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("File.Close: %v", err)
			}
			if err := d.c.Close(); err != nil {
				t.Errorf("Client.Close: %v", err)
			}
		})
	}
}

// TestRingTimeout hangs the server without killing it: Wait returns
// ErrTimeout after RingOpts.Timeout (or the context's deadline), Close
// gives up with ErrTimeout leaving the memory busy, and once the server
// dies the retried Close and Client.Close succeed.
func TestRingTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for name, mk := range dyingServers() {
		t.Run(name, func(t *testing.T) {
			d := mk(t)
			_, buf, r, _ := dyingSetup(t, d.c, fs.RingOpts{Timeout: timeout})
			out := make([]fs.Completion, 8)
			start := time.Now()
			n, err := r.Wait(context.Background(), out, 1)
			if el := time.Since(start); n != 0 || !errors.Is(err, fs.ErrTimeout) || !errors.Is(err, syscall.ETIMEDOUT) || el < timeout || el > timeout+3*time.Second {
				t.Fatalf("Wait on hung I/O: %d, %v after %v; want ErrTimeout after %v", n, err, el, timeout)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			n, err = r.Wait(ctx, out, 1)
			cancel()
			if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait with a shorter context deadline: %d, %v; want DeadlineExceeded", n, err)
			}
			start = time.Now()
			err = r.Close()
			if el := time.Since(start); !errors.Is(err, fs.ErrTimeout) || el > timeout+3*time.Second {
				t.Fatalf("Ring.Close on hung I/O: %v after %v; want ErrTimeout", err, el)
			}
			if err := buf.Close(); !errors.Is(err, fs.ErrBusy) {
				t.Fatalf("Buffer.Close under hung I/O: %v, want ErrBusy (the memory must outlive it)", err)
			}
			if err := d.c.Close(); !errors.Is(err, fs.ErrTimeout) {
				t.Fatalf("Client.Close with a hung ring: %v, want ErrTimeout", err)
			}
			if _, err := d.c.NewBuffer(4096, fs.BufferOpts{}); !errors.Is(err, fs.ErrClosed) {
				t.Fatalf("NewBuffer after Client.Close: %v, want ErrClosed", err)
			}
			d.kill()
			if err := r.Close(); err != nil {
				t.Fatalf("Ring.Close retried after the death: %v", err)
			}
			if err := d.c.Close(); err != nil {
				t.Fatalf("Client.Close retried: %v", err)
			}
		})
	}
}

// TestDaemonDeathPoll: a caller that only polls (Wait with min 0, never
// blocking) still sees the lost I/O fail once the daemon is gone.
func TestDaemonDeathPoll(t *testing.T) {
	d, c := newHF3FS(t, nil)
	defer c.Close()
	d.SetFaults(func(io fs.DaemonIO) fs.DaemonFault {
		if io.Op == fs.Read && io.Tag >= hangTag {
			return fs.DaemonFault{Delay: time.Hour}
		}
		return fs.DaemonFault{}
	})
	_, _, r, _ := dyingSetup(t, c, fs.RingOpts{})
	d.Kill()
	out := make([]fs.Completion, 8)
	got := 0
	for deadline := time.Now().Add(5 * time.Second); got < 4 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n, err := r.Wait(context.Background(), out, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range out[:n] {
			if cp.Tag < hangTag || !errors.Is(cp.Err, syscall.ENOTCONN) {
				t.Fatalf("polled %+v, want ENOTCONN for a hung read", cp)
			}
		}
		got += n
	}
	if got != 4 {
		t.Fatalf("polling saw %d of the 4 lost reads fail within 5 s", got)
	}
}

// TestDaemonDeathReadAt: the Client's own helpers (File.ReadAt and
// WriteAt on pooled rings) fail with ENOTCONN, promptly, once the daemon
// is gone, for I/O already waiting and for I/O started afterwards.
func TestDaemonDeathReadAt(t *testing.T) {
	d, c := newHF3FS(t, nil)
	defer c.Close()
	f, err := c.OpenFile("x", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 1<<16), 0); err != nil {
		t.Fatal(err)
	}
	d.SetFaults(func(fs.DaemonIO) fs.DaemonFault { return fs.DaemonFault{Delay: time.Hour} })
	errc := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 4096), 0)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	d.Kill()
	select {
	case err := <-errc:
		if !errors.Is(err, syscall.ENOTCONN) {
			t.Errorf("ReadAt in flight when the daemon died: %v, want ENOTCONN", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadAt in flight when the daemon died did not return in 10 s")
	}
	start := time.Now()
	if _, err := f.WriteAt([]byte("late"), 0); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("WriteAt after the death: %v, want ENOTCONN", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("WriteAt after the death took %v", el)
	}
}
