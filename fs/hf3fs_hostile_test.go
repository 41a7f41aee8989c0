//go:build linux

package fs

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
)

// TestHF3FSHostileCompletions: the CQ lives in memory the daemon writes, so
// a misbehaving daemon must not crash, hang or mislead the client. A
// completion for a slot not in flight is dropped; a byte count above the
// request becomes EIO (it used to be returned as is, larger than the
// region); a cqeHead outside the queue is ignored, so Wait ends with its
// context (it used to spin forever in reap holding the completion lock, or
// index outside the CQ). The test then repairs the queue: Ring.Close waits
// for I/O in flight, so a daemon that never completes it holds Close.
func TestHF3FSHostileCompletions(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(c []hf3fs.IoCqe, head int32) int32
		want   error // nil: the read completes with 4096 bytes
		ctxErr bool  // Wait ends by its context
	}{
		{"result-too-large", func(c []hf3fs.IoCqe, h int32) int32 {
			for i := range c {
				c[i].Result = 1 << 40
			}
			return h
		}, syscall.EIO, false},
		{"head-negative", func(c []hf3fs.IoCqe, h int32) int32 {
			for i := range c {
				c[i].Index = -1
			}
			return -5
		}, nil, true},
		{"head-past-end", func(c []hf3fs.IoCqe, h int32) int32 { return 1 << 30 }, nil, true},
		{"foreign-slot", func(c []hf3fs.IoCqe, h int32) int32 {
			for i := range c {
				c[i].Index = 3 // not in flight
			}
			return h
		}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewFakeDaemon(t, nil)
			c, err := Open(context.Background(), d.Mount(), WithBackend("hf3fs"), WithHF3FS(d.Opts()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			f, err := c.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
				t.Fatal(err)
			}
			b, err := c.NewBuffer(8192, BufferOpts{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			r, err := c.NewRing(RingOpts{Entries: 4, Op: Read})
			if err != nil {
				t.Fatal(err)
			}
			trueHead := make(chan int32, 1)
			tp := func(c []hf3fs.IoCqe, h int32) int32 {
				trueHead <- h
				return tc.tamper(c, h)
			}
			d.tamper.Store(&tp)
			reg, _ := b.Region(0, 4096)
			slot, err := r.Prep(Req{File: f, Buf: reg, Tag: 7})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			out := make([]Completion, 4)
			start := time.Now()
			n, err := r.Wait(ctx, out, 1)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Wait took %v", d)
			}
			switch {
			case tc.ctxErr:
				if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Wait = %d, %v; want 0 and the context's deadline", n, err)
				}
			case err != nil || n != 1:
				t.Fatalf("Wait = %d, %v", n, err)
			case out[0].Tag != 7 || !errors.Is(out[0].Err, tc.want) || out[0].N != 0:
				t.Fatalf("completion %+v, want tag 7, N 0, %v", out[0], tc.want)
			}
			d.tamper.Store(nil)
			if tc.ctxErr {
				// Repair the queue as a sane daemon would have left it, plus
				// one good completion for the slot, so that Close (which
				// waits for I/O in flight) can finish.
				rg := r.eng.(*hf3fsEngine).ring
				h := <-trueHead
				rg.Cqes[h] = hf3fs.IoCqe{Index: int32(slot), Result: 4096, Userdata: 7}
				rg.CqeHead.Store((h + 1) % rg.N)
				rg.Sem.Post()
			}
			done := make(chan struct{})
			go func() { r.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Ring.Close hung")
			}
		})
	}
}
