//go:build linux

package hf3fs

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// word returns the futex word: the value half of data (low 32 bits; at
// offset 0 on little-endian machines, 4 on big-endian ones).
func (s *Sem) word() *uint32 {
	p := unsafe.Pointer(s.data)
	if bigEndian {
		p = unsafe.Add(p, 4)
	}
	return (*uint32)(p)
}

var bigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// Wait decrements the value, blocking up to timeout while it is zero
// (sem_timedwait with a relative timeout). It reports whether it
// decremented. Like glibc it registers as a waiter (data += 1<<32) while
// blocked so that posters issue FUTEX_WAKE.
func (s *Sem) Wait(timeout time.Duration) bool {
	if s.TryWait() {
		return true
	}
	if timeout <= 0 {
		return false
	}
	deadline := time.Now().Add(timeout)
	d := atomic.AddUint64(s.data, waiterOne)
	for {
		if uint32(d) == 0 {
			rem := time.Until(deadline)
			if rem <= 0 {
				atomic.AddUint64(s.data, ^uint64(waiterOne-1))
				return false
			}
			futexWait(s.word(), 0, rem)
			d = atomic.LoadUint64(s.data)
			continue
		}
		if atomic.CompareAndSwapUint64(s.data, d, d-1-waiterOne) {
			return true
		}
		d = atomic.LoadUint64(s.data)
	}
}

// futexWait sleeps while *addr == val, up to d (shared futex, relative
// CLOCK_MONOTONIC timeout). Spurious returns are fine: callers re-check.
func futexWait(addr *uint32, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes up to n waiters on addr (shared futex).
func futexWake(addr *uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWake, uintptr(n), 0, 0, 0)
}

// futex(2) operations, without FUTEX_PRIVATE_FLAG: the semaphore is shared
// between processes.
const (
	futexOpWait = 0
	futexOpWake = 1
)
