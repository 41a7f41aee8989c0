//go:build linux

package hf3fs

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Ring shared-memory layout (src/fuse/IoRing.h): four int32 markers, then
// IoArgs[N], IoCqe[N], IoSqe[N] and a 32-byte sem_t, then 4096 bytes of
// slack, where N = entries+1 (one slot is kept empty).
const (
	headerSize = 16
	ArgsSize   = 56
	CqeSize    = 24
	SqeSize    = 16
	SemSize    = 32
	slack      = 4096
)

// IoArgs is one request in a ring (IoRing.h IoArgs): the buffer id and
// offset, the 3FS inode id, the file offset and length, and the caller's
// opaque 8 bytes.
type IoArgs struct {
	BufID    [16]byte
	BufOff   uint64
	FileIID  uint64
	FileOff  uint64
	IoLen    uint64
	Userdata uint64
}

// IoCqe is one completion: the slot index and bytes or -errno.
type IoCqe struct {
	Index    int32
	Reserved int32
	Result   int64
	Userdata uint64
}

// IoSqe is one submission: the slot index whose IoArgs hold the request.
type IoSqe struct {
	Index    int32
	_        int32
	Userdata uint64
}

// RingSize returns the shared-memory bytes of a ring with entries slots
// (hf3fs_ior_size).
func RingSize(entries int) int { return headerSize + SemSize + 96*(entries+1) + slack }

// RingEntries returns the entries the daemon derives from a ring's size.
func RingEntries(size int) int { return (size-slack-headerSize-SemSize)/96 - 1 }

// Ring is a view of a ring's shared memory.
type Ring struct {
	N       int32         // slots in each queue: entries+1
	SqeHead *atomic.Int32 // written by the app
	SqeTail *atomic.Int32 // advanced by the daemon after a batch, in order
	CqeHead *atomic.Int32 // written by the daemon
	CqeTail *atomic.Int32 // advanced by the app
	Args    []IoArgs
	Cqes    []IoCqe
	Sqes    []IoSqe
	Sem     *Sem // the CQ semaphore the daemon posts
}

// MapRing returns a view of mem, a ring mapping of exactly RingSize(E)
// bytes or more (page rounding), with E >= 1.
func MapRing(mem []byte, entries int) (*Ring, error) {
	if entries < 1 || len(mem) < RingSize(entries) || uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, fmt.Errorf("hf3fs: ring of %d bytes cannot hold %d entries", len(mem), entries)
	}
	n := entries + 1
	p := unsafe.Pointer(unsafe.SliceData(mem))
	r := &Ring{
		N:       int32(n),
		SqeHead: (*atomic.Int32)(p),
		SqeTail: (*atomic.Int32)(unsafe.Add(p, 4)),
		CqeHead: (*atomic.Int32)(unsafe.Add(p, 8)),
		CqeTail: (*atomic.Int32)(unsafe.Add(p, 12)),
		Args:    unsafe.Slice((*IoArgs)(unsafe.Add(p, headerSize)), n),
		Cqes:    unsafe.Slice((*IoCqe)(unsafe.Add(p, headerSize+ArgsSize*n)), n),
		Sqes:    unsafe.Slice((*IoSqe)(unsafe.Add(p, headerSize+(ArgsSize+CqeSize)*n)), n),
	}
	r.Sem = SemAt(mem[headerSize+96*n : headerSize+96*n+SemSize])
	return r, nil
}

// Queued returns how many entries lie between tail and head.
func (r *Ring) Queued(head, tail int32) int32 { return ((head-tail)%r.N + r.N) % r.N }
