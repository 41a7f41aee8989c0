//go:build linux

package hf3fs

import (
	"sync/atomic"
	"unsafe"
)

// Sem is a process-shared POSIX semaphore in glibc's 64-bit layout
// (nptl struct new_sem: a uint64 whose low 32 bits are the value and high
// 32 bits the number of waiters, then int private, int pad), so Go code
// and C sem_post/sem_timedwait can share one in a /dev/shm mapping.
// Waiting and waking use shared (not private) futexes on the value word.
type Sem struct {
	data *uint64
}

// semValueMax is SEM_VALUE_MAX.
const semValueMax = 1<<31 - 1

const waiterOne = 1 << 32

// SemAt returns the semaphore stored in b (at least 32 bytes, 8-byte
// aligned, normally shared memory).
func SemAt(b []byte) *Sem {
	if len(b) < SemSize || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
		panic("hf3fs: SemAt needs 32 aligned bytes")
	}
	return &Sem{data: (*uint64)(unsafe.Pointer(unsafe.SliceData(b)))}
}

// Init sets the value to v with no waiters (sem_init(sem, 1, v)).
func (s *Sem) Init(v uint32) {
	atomic.StoreUint64(s.data, uint64(v))
	*(*int32)(unsafe.Add(unsafe.Pointer(s.data), 8)) = 0 // FUTEX_SHARED
}

// Value returns the current value (sem_getvalue).
func (s *Sem) Value() uint32 { return uint32(atomic.LoadUint64(s.data)) }

// Post increments the value and wakes one waiter if any is registered
// (sem_post). It reports false when the value is at SEM_VALUE_MAX.
func (s *Sem) Post() bool {
	for {
		d := atomic.LoadUint64(s.data)
		if uint32(d) >= semValueMax {
			return false
		}
		if atomic.CompareAndSwapUint64(s.data, d, d+1) {
			if d>>32 != 0 {
				futexWake(s.word(), 1)
			}
			return true
		}
	}
}

// TryWait decrements the value if it is positive (sem_trywait).
func (s *Sem) TryWait() bool {
	for {
		d := atomic.LoadUint64(s.data)
		if uint32(d) == 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(s.data, d, d-1) {
			return true
		}
	}
}
