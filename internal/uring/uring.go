//go:build linux

// Package uring is a small io_uring layer built on raw system calls
// (io_uring_setup, io_uring_enter, io_uring_register) through
// golang.org/x/sys/unix, with no cgo and no liburing.
//
// It covers what the fs package's uring backend needs: ring setup and the
// mmap of the SQ ring, CQ ring and SQE array; sparse registered-buffer and
// registered-file tables updated one slot at a time; READ/WRITE and
// READ_FIXED/WRITE_FIXED SQEs; one io_uring_enter per batch with an optional
// wait for completions and an optional timeout (IORING_ENTER_EXT_ARG).
//
// Upstream: the Linux kernel's include/uapi/linux/io_uring.h (structure
// layouts and constants) and io_uring/io_uring.c (the enter protocol). The
// layouts here are written from that ABI description, not copied from liburing.
//
// A Ring is not safe for concurrent use: the caller serialises access to the
// submission side and to the completion side (the fs backend holds one mutex
// for each).
package uring

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Opcodes (enum io_uring_op).
const (
	OpNop        = 0
	OpFsync      = 3
	OpReadFixed  = 4
	OpWriteFixed = 5
	OpRead       = 22
	OpWrite      = 23
)

// SQE flags.
const (
	SQEFixedFile = 1 << 0 // IOSQE_FIXED_FILE: fd is an index into the registered file table
)

const (
	setupClamp = 1 << 4 // IORING_SETUP_CLAMP

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS
	enterExtArg    = 1 << 3 // IORING_ENTER_EXT_ARG

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featExtArg     = 1 << 8 // IORING_FEAT_EXT_ARG

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	registerFilesUpdate   = 6
	registerBuffers2      = 15
	registerBuffersUpdate = 16
	registerFiles2        = 13
	rsrcRegisterSparse    = 1 << 0
)

// ErrUnsupported is returned by Setup when the kernel refuses io_uring
// (ENOSYS: not built in; EPERM: io_uring_disabled or seccomp; or a missing
// feature this package relies on).
var ErrUnsupported = errors.New("uring: io_uring unavailable")

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// SQE is one submission queue entry (struct io_uring_sqe, 64 bytes).
type SQE struct {
	Opcode      uint8  // Op* constant
	Flags       uint8  // SQE* flags
	IOPrio      uint16 // ioprio (class << 13 | level)
	Fd          int32  // descriptor, or registered-file index with SQEFixedFile
	Off         uint64 // file offset
	Addr        uint64 // buffer address
	Len         uint32 // buffer length
	RWFlags     uint32 // RWF_* flags
	UserData    uint64 // returned in the CQE
	BufIndex    uint16 // registered-buffer index for *_FIXED
	Personality uint16 // credentials id (0: the ring's)
	FileIndex   int32  // splice_fd_in / file_index
	Addr3       uint64 // third address (unused here)
	pad         uint64
}

// CQE is one completion queue entry (struct io_uring_cqe, 16 bytes): Res is a
// byte count or -errno.
type CQE struct {
	UserData uint64 // the SQE's UserData
	Res      int32  // bytes or -errno
	Flags    uint32 // IORING_CQE_F_* flags
}

type rsrcRegister struct {
	nr    uint32
	flags uint32
	resv2 uint64
	data  uint64
	tags  uint64
}

type rsrcUpdate2 struct {
	offset uint32
	resv   uint32
	data   uint64
	tags   uint64
	nr     uint32
	resv2  uint32
}

type filesUpdate struct {
	offset uint32
	resv   uint32
	fds    uint64
}

type geteventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// Ring is one io_uring instance with its mapped queues.
type Ring struct {
	fd       int
	features uint32

	sqMem, cqMem, sqeMem []byte

	sqHead, sqTail *uint32
	sqMask         uint32
	sqEntries      uint32
	sqArray        []uint32
	sqes           []SQE
	sqLocalTail    uint32 // next SQE to hand out (not yet published)
	sqPublished    uint32 // tail value last stored for the kernel

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []CQE

	ts  unix.Timespec
	arg geteventsArg

	enters atomic.Uint64
}

// Enters returns the number of io_uring_enter calls made by Submit and Wait.
func (r *Ring) Enters() uint64 { return r.enters.Load() }

// Setup creates a ring with at least entries SQEs (clamped by the kernel)
// and a CQ twice as large. It returns ErrUnsupported (wrapping the errno)
// when the kernel refuses io_uring.
func Setup(entries int) (*Ring, error) {
	if entries <= 0 {
		return nil, fmt.Errorf("uring: entries %d must be > 0", entries)
	}
	var p params
	p.flags = setupClamp
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		if errno == unix.ENOSYS || errno == unix.EPERM || errno == unix.EACCES {
			return nil, fmt.Errorf("%w: io_uring_setup: %w", ErrUnsupported, errno)
		}
		return nil, fmt.Errorf("uring: io_uring_setup(%d): %w", entries, errno)
	}
	r := &Ring{fd: int(fd), features: p.features}
	if p.features&featSingleMmap == 0 || p.features&featExtArg == 0 {
		unix.Close(r.fd)
		return nil, fmt.Errorf("%w: kernel lacks IORING_FEAT_SINGLE_MMAP or EXT_ARG", ErrUnsupported)
	}
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(CQE{})))
	size := max(sqSize, cqSize)
	mem, err := unix.Mmap(r.fd, offSQRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(r.fd)
		return nil, fmt.Errorf("uring: mmap rings: %w", err)
	}
	r.sqMem, r.cqMem = mem, mem
	sqeMem, err := unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(SQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Munmap(mem)
		unix.Close(r.fd)
		return nil, fmt.Errorf("uring: mmap sqes: %w", err)
	}
	r.sqeMem = sqeMem
	base := unsafe.Pointer(&mem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqEntries = *(*uint32)(unsafe.Add(base, p.sqOff.ringEntries))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*CQE)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	r.sqLocalTail = atomic.LoadUint32(r.sqTail)
	r.sqPublished = r.sqLocalTail
	return r, nil
}

// SQEntries is the submission queue size the kernel granted.
func (r *Ring) SQEntries() int { return int(r.sqEntries) }

// CQEntries is the completion queue size the kernel granted.
func (r *Ring) CQEntries() int { return len(r.cqes) }

// Close unmaps the queues and closes the ring; the kernel cancels or waits
// for I/O still in flight.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	unix.Munmap(r.sqeMem)
	unix.Munmap(r.sqMem)
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// GetSQE returns the next free SQE, zeroed, or nil when the SQ is full. The
// SQE is not seen by the kernel until Submit.
func (r *Ring) GetSQE() *SQE {
	head := atomic.LoadUint32(r.sqHead)
	if r.sqLocalTail-head >= r.sqEntries {
		return nil
	}
	idx := r.sqLocalTail & r.sqMask
	r.sqLocalTail++
	sqe := &r.sqes[idx]
	*sqe = SQE{}
	r.sqArray[idx] = idx
	return sqe
}

// Pending is the number of SQEs handed out but not yet submitted.
func (r *Ring) Pending() int { return int(r.sqLocalTail - r.sqPublished) }

// Submit publishes every SQE handed out since the last Submit and calls
// io_uring_enter once, also waiting for at least waitNr completions when
// waitNr > 0. It returns the number of SQEs the kernel consumed.
func (r *Ring) Submit(waitNr int) (int, error) {
	n := r.sqLocalTail - r.sqPublished
	atomic.StoreUint32(r.sqTail, r.sqLocalTail)
	r.sqPublished = r.sqLocalTail
	if n == 0 && waitNr == 0 {
		return 0, nil
	}
	var flags uintptr
	if waitNr > 0 {
		flags |= enterGetEvents
	}
	for {
		r.enters.Add(1)
		got, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(n), uintptr(waitNr), flags, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return int(got), fmt.Errorf("uring: io_uring_enter: %w", errno)
		}
		return int(got), nil
	}
}

// Wait blocks until at least waitNr completions are in the CQ or the
// timeout passes (timeout < 0 waits without limit). It returns
// syscall.ETIME on timeout and syscall.EINTR when interrupted.
func (r *Ring) Wait(waitNr int, timeout time.Duration) error {
	if r.Ready() >= waitNr {
		return nil
	}
	flags := uintptr(enterGetEvents)
	var arg, argSz uintptr
	if timeout >= 0 {
		r.ts = unix.NsecToTimespec(int64(timeout))
		r.arg = geteventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
		flags |= enterExtArg
		arg = uintptr(unsafe.Pointer(&r.arg))
		argSz = unsafe.Sizeof(r.arg)
	}
	r.enters.Add(1)
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, uintptr(waitNr), flags, arg, argSz)
	if errno != 0 {
		return errno
	}
	return nil
}

// Ready is the number of completions waiting in the CQ.
func (r *Ring) Ready() int {
	return int(atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead))
}

// Reap copies up to len(out) completions from the CQ into out and releases
// their CQ slots. It never blocks.
func (r *Ring) Reap(out []CQE) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for head != tail && n < len(out) {
		out[n] = r.cqes[head&r.cqMask]
		head++
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// RegisterSparse creates empty registered-file and registered-buffer tables
// with the given numbers of slots (IORING_REGISTER_FILES2 and
// IORING_REGISTER_BUFFERS2 with IORING_RSRC_REGISTER_SPARSE). Either count
// may be 0 to skip that table.
func (r *Ring) RegisterSparse(files, buffers int) error {
	if files > 0 {
		reg := rsrcRegister{nr: uint32(files), flags: rsrcRegisterSparse}
		if err := r.register(registerFiles2, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return fmt.Errorf("uring: register sparse files: %w", err)
		}
	}
	if buffers > 0 {
		reg := rsrcRegister{nr: uint32(buffers), flags: rsrcRegisterSparse}
		if err := r.register(registerBuffers2, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return fmt.Errorf("uring: register sparse buffers: %w", err)
		}
	}
	return nil
}

// UpdateFile sets registered-file slot idx to fd (-1 clears it).
func (r *Ring) UpdateFile(idx int, fd int) error {
	// Heap-allocated: the kernel reads fds through a pointer stored in up,
	// which must not move while the call runs.
	fds := new([1]int32)
	fds[0] = int32(fd)
	up := &filesUpdate{offset: uint32(idx), fds: uint64(uintptr(unsafe.Pointer(&fds[0])))}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerFilesUpdate, uintptr(unsafe.Pointer(up)), 1, 0, 0)
	runtime.KeepAlive(fds)
	if errno != 0 {
		return fmt.Errorf("uring: update file slot %d: %w", idx, errno)
	}
	return nil
}

// UpdateBuffer sets registered-buffer slot idx to mem (nil clears it). The
// memory must stay mapped while registered.
func (r *Ring) UpdateBuffer(idx int, mem []byte) error {
	iov := new(unix.Iovec)
	if len(mem) > 0 {
		iov.Base = &mem[0]
		iov.SetLen(len(mem))
	}
	up := &rsrcUpdate2{offset: uint32(idx), data: uint64(uintptr(unsafe.Pointer(iov))), nr: 1}
	err := r.register(registerBuffersUpdate, unsafe.Pointer(up), unsafe.Sizeof(*up))
	runtime.KeepAlive(iov)
	if err != nil {
		return fmt.Errorf("uring: update buffer slot %d: %w", idx, err)
	}
	return nil
}

func (r *Ring) register(op uintptr, arg unsafe.Pointer, nr uintptr) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), nr, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}
