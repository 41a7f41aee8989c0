//go:build cgo && linux

package semc_test

import (
	"errors"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
	"github.com/fireflyer-go/fireflyer/internal/hf3fs/semc"
)

// shared returns a MAP_SHARED page, so the futexes are shared ones as on
// /dev/shm.
func shared(t *testing.T) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

func TestSize(t *testing.T) {
	if semc.Size != hf3fs.SemSize {
		t.Fatalf("sizeof(sem_t) = %d, want %d", semc.Size, hf3fs.SemSize)
	}
}

func TestGoPostCWait(t *testing.T) {
	mem := shared(t)
	p := unsafe.Pointer(&mem[0])
	if err := semc.Init(p, 7); err != nil {
		t.Fatal(err)
	}
	s := hf3fs.SemAt(mem)
	if s.Value() != 7 {
		t.Fatalf("Go reads %d after sem_init(7)", s.Value())
	}
	for range 7 {
		if !s.TryWait() {
			t.Fatal("TryWait failed with value > 0")
		}
	}
	for range 3 {
		s.Post()
	}
	if v := semc.Value(p); v != 3 {
		t.Fatalf("sem_getvalue = %d after three Go posts", v)
	}
	for range 3 {
		if err := semc.TimedWait(p, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := semc.TimedWait(p, 5*time.Millisecond); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("sem_timedwait on 0: %v, want ETIMEDOUT", err)
	}
	// A C waiter blocked in the kernel is woken by a Go post.
	done := make(chan error, 1)
	go func() { done <- semc.TimedWait(p, 10*time.Second) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	s.Post()
	if err := <-done; err != nil {
		t.Fatalf("blocked sem_timedwait after Go post: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("C waiter woke %v after the Go post", d)
	}
}

func TestCPostGoWait(t *testing.T) {
	mem := shared(t)
	p := unsafe.Pointer(&mem[0])
	if err := semc.Init(p, 0); err != nil {
		t.Fatal(err)
	}
	s := hf3fs.SemAt(mem)
	if s.Wait(5 * time.Millisecond) {
		t.Fatal("Go Wait on 0 succeeded")
	}
	semc.Post(p)
	if !s.Wait(time.Second) {
		t.Fatal("Go Wait missed a C post")
	}
	// A Go waiter blocked on the futex is woken by sem_post.
	done := make(chan bool, 1)
	go func() { done <- s.Wait(10 * time.Second) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := semc.Post(p); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Fatal("blocked Go Wait not woken by sem_post")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Go waiter woke %v after sem_post", d)
	}
	if v := semc.Value(p); v != 0 {
		t.Fatalf("value %d after matched post and wait", v)
	}
}
