//go:build linux

package uring

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestLayout(t *testing.T) {
	if s := unsafe.Sizeof(SQE{}); s != 64 {
		t.Fatalf("SQE is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(CQE{}); s != 16 {
		t.Fatalf("CQE is %d bytes, want 16", s)
	}
	if s := unsafe.Sizeof(params{}); s != 120 {
		t.Fatalf("io_uring_params is %d bytes, want 120", s)
	}
	if o := unsafe.Offsetof(SQE{}.UserData); o != 32 {
		t.Fatalf("user_data at %d, want 32", o)
	}
	if o := unsafe.Offsetof(SQE{}.BufIndex); o != 40 {
		t.Fatalf("buf_index at %d, want 40", o)
	}
}

func TestFixedReadWrite(t *testing.T) {
	r, err := Setup(8)
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.SQEntries() < 8 || r.CQEntries() < 8 {
		t.Fatalf("entries %d/%d", r.SQEntries(), r.CQEntries())
	}
	if err := r.RegisterSparse(4, 4); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096) // registered: pinned while in the table
	copy(buf, "io_uring fixed write")
	if err := r.UpdateBuffer(2, buf); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateFile(1, int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	sqe := r.GetSQE()
	*sqe = SQE{Opcode: OpWriteFixed, Flags: SQEFixedFile, Fd: 1, Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: 20, Off: 100, BufIndex: 2, UserData: 77}
	if n, err := r.Submit(1); err != nil || n != 1 {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	out := make([]CQE, 4)
	if n := r.Reap(out); n != 1 || out[0].UserData != 77 || out[0].Res != 20 {
		t.Fatalf("write CQE %d %+v", n, out[0])
	}
	got := make([]byte, 20)
	if _, err := f.ReadAt(got, 100); err != nil || string(got) != "io_uring fixed write" {
		t.Fatalf("file holds %q, %v", got, err)
	}
	// A read past EOF completes with 0; a read of a bad fd with -EBADF.
	sqe = r.GetSQE()
	*sqe = SQE{Opcode: OpReadFixed, Flags: SQEFixedFile, Fd: 1, Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: 10, Off: 1 << 20, BufIndex: 2, UserData: 1}
	sqe = r.GetSQE()
	*sqe = SQE{Opcode: OpRead, Fd: 9999, Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: 10, UserData: 2}
	if _, err := r.Submit(2); err != nil {
		t.Fatal(err)
	}
	n := r.Reap(out)
	res := map[uint64]int32{}
	for _, c := range out[:n] {
		res[c.UserData] = c.Res
	}
	if n != 2 || res[1] != 0 || res[2] != -int32(syscall.EBADF) {
		t.Fatalf("CQEs %v", out[:n])
	}
	// Nothing in flight: a timed wait returns ETIME after about the timeout.
	start := time.Now()
	if err := r.Wait(1, 10*time.Millisecond); err != syscall.ETIME {
		t.Fatalf("Wait on empty ring: %v, want ETIME", err)
	}
	if d := time.Since(start); d < 5*time.Millisecond {
		t.Fatalf("timed wait returned after %v", d)
	}
	if r.Enters() < 3 {
		t.Fatalf("Enters = %d", r.Enters())
	}
	if err := r.UpdateBuffer(2, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateFile(1, -1); err != nil {
		t.Fatal(err)
	}
}

func TestSQFull(t *testing.T) {
	r, err := Setup(4)
	if err != nil {
		t.Skip(err)
	}
	defer r.Close()
	for range r.SQEntries() {
		if r.GetSQE() == nil {
			t.Fatal("SQE nil before the SQ is full")
		}
	}
	if r.GetSQE() != nil {
		t.Fatal("GetSQE on a full SQ")
	}
	if r.Pending() != r.SQEntries() {
		t.Fatalf("Pending = %d", r.Pending())
	}
	if _, err := r.Submit(r.SQEntries()); err != nil { // NOPs
		t.Fatal(err)
	}
	if got := r.Reap(make([]CQE, 16)); got != r.SQEntries() {
		t.Fatalf("reaped %d NOPs", got)
	}
}
