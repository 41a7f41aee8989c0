//go:build linux

package fs

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestURingWrapBufferFixed: on uring, caller memory from WrapBuffer is
// registered with the ring's io_uring instance as a fixed buffer (the I/O
// goes out as READ_FIXED), like a mapped Buffer.
func TestURingWrapBufferFixed(t *testing.T) {
	c, err := Open(context.Background(), t.TempDir(), WithBackend("uring"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Backend() != "uring" {
		t.Skipf("io_uring unavailable: %s", c.Features().Note)
	}
	mem, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	b, err := c.WrapBuffer(mem, BufferOpts{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.OpenFile("x", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.NewRing(RingOpts{Entries: 2, Op: Read})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := b.Region(0, 4096)
	if _, err := r.Prep(Req{File: f, Buf: reg}); err != nil {
		t.Fatal(err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	out := make([]Completion, 1)
	if n, err := r.Wait(context.Background(), out, 1); n != 1 || err != nil || out[0].Err != nil {
		t.Fatalf("read into wrapped memory: %d %v %+v", n, err, out[0])
	}
	e := r.eng.(*uringEngine)
	if e.bufs[b.idx] != 1 {
		t.Fatalf("wrapped buffer's registration state %d, want 1 (a fixed buffer)", e.bufs[b.idx])
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if e.bufs[b.idx] != 0 {
		t.Fatalf("closed wrapped buffer still registered (%d)", e.bufs[b.idx])
	}
	r.Close()
	f.Close()
}
