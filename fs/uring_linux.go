//go:build linux

package fs

import (
	"os"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/uring"
)

// uringBackend runs each Ring on its own io_uring instance: Buffers and
// Files are registered in every ring that uses them (sparse tables filled on
// first use), requests become READ_FIXED/WRITE_FIXED SQEs on fixed files,
// and each dispatched batch is one io_uring_enter.
type uringBackend struct{ note string }

// uringSetup creates io_uring instances; a test replaces it to exercise
// the fallback to posix on a kernel that has io_uring.
var uringSetup = uring.Setup

func newUringBackend() (*uringBackend, error) {
	r, err := uringSetup(4)
	if err != nil {
		return nil, err
	}
	err = r.RegisterSparse(4, 4)
	r.Close()
	if err != nil {
		return nil, err
	}
	return &uringBackend{}, nil
}

// Features implements Backend.
func (u *uringBackend) Features() Features {
	return Features{Backend: "uring", ZeroCopy: true, FixedBuffers: true, FixedFiles: true, Priorities: true, Note: u.note}
}

// OpenFile implements Backend.
func (u *uringBackend) OpenFile(name string, flag int, perm os.FileMode) (BackendFile, error) {
	o, err := openOS(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// RegisterFile implements Backend.
func (u *uringBackend) RegisterFile(f *os.File) (BackendFile, error) {
	o, err := dupOS(f)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// MapBuffer implements Backend with anonymous memory (registered with each
// ring's io_uring instance on first use).
func (u *uringBackend) MapBuffer(s BufferSpec) ([]byte, func() error, error) { return mapLocal(s) }

// Close implements Backend.
func (u *uringBackend) Close() error { return nil }

// maxBuffers is the io_uring registered-buffer table size: a Client may
// hold more buffers, but those past it (and any over 1 GiB) are used with
// plain READ/WRITE instead of fixed buffers.
const maxBuffers = 1024

// ioprio values (include/uapi/linux/ioprio.h): class << 13 | level.
const (
	ioprioClassBE = 2
	ioprioHigh    = ioprioClassBE << 13 // level 0, the highest best-effort level
	ioprioLow     = ioprioClassBE<<13 | 7
)

type uringEngine struct {
	opts  RingOpts
	ring  *uring.Ring
	files []int8 // per client file index: 0 unknown, 1 registered, -1 not registrable
	bufs  []int8 // per client buffer index: same
	cqes  []uring.CQE
	prio  uint16
}

// NewEngine implements Backend: one io_uring instance per Ring.
func (u *uringBackend) NewEngine(o RingOpts) (Engine, error) {
	ring, err := uringSetup(o.Entries)
	if err != nil {
		return nil, err
	}
	// The file table is bounded by RLIMIT_NOFILE; retry smaller if refused
	// (files beyond the table use their plain descriptor).
	nf := maxFiles
	for {
		err = ring.RegisterSparse(nf, 0)
		if err == nil || nf <= 64 {
			break
		}
		nf /= 4
	}
	if err == nil {
		err = ring.RegisterSparse(0, maxBuffers)
	}
	if err != nil {
		ring.Close()
		return nil, err
	}
	e := &uringEngine{opts: o, ring: ring, files: make([]int8, nf), bufs: make([]int8, maxBuffers), cqes: make([]uring.CQE, o.Entries)}
	switch o.Priority {
	case High:
		e.prio = ioprioHigh
	case Low:
		e.prio = ioprioLow
	}
	return e, nil
}

// fixedFile returns the registered-file index for io's file, registering
// it on first use, or -1 to use the plain descriptor.
func (e *uringEngine) fixedFile(io *IO) int {
	i := io.FileIndex
	if i < 0 || i >= len(e.files) {
		return -1
	}
	switch e.files[i] {
	case 1:
		return i
	case -1:
		return -1
	}
	if err := e.ring.UpdateFile(i, io.Handle.Fd()); err != nil {
		e.files[i] = -1
		return -1
	}
	e.files[i] = 1
	return i
}

// fixedBuf is fixedFile for buffers (io_uring limits a registered buffer to
// 1 GiB; larger ones use plain READ/WRITE).
func (e *uringEngine) fixedBuf(io *IO) int {
	i := io.BufferIndex
	if i < 0 || i >= len(e.bufs) {
		return -1
	}
	switch e.bufs[i] {
	case 1:
		return i
	case -1:
		return -1
	}
	mem := io.Buf.Buffer().Bytes()
	if len(mem) > 1<<30 || e.ring.UpdateBuffer(i, mem) != nil {
		e.bufs[i] = -1
		return -1
	}
	e.bufs[i] = 1
	return i
}

// ForgetFile implements Engine.
func (e *uringEngine) ForgetFile(i int) {
	if i >= 0 && i < len(e.files) && e.files[i] != 0 {
		if e.files[i] == 1 {
			e.ring.UpdateFile(i, -1)
		}
		e.files[i] = 0
	}
}

// ForgetBuffer implements Engine.
func (e *uringEngine) ForgetBuffer(i int) {
	if i >= 0 && i < len(e.bufs) && e.bufs[i] != 0 {
		if e.bufs[i] == 1 {
			e.ring.UpdateBuffer(i, nil)
		}
		e.bufs[i] = 0
	}
}

// Submit implements Engine: one SQE per IO, one io_uring_enter.
func (e *uringEngine) Submit(ios []IO) error {
	write := e.opts.Op == Write
	for i := 0; i < len(ios); {
		sqe := e.ring.GetSQE()
		if sqe == nil {
			// The SQ is at least Entries long, so this happens only if the
			// kernel has not consumed earlier SQEs yet: push them now.
			if _, err := e.ring.Submit(0); err != nil {
				return err
			}
			continue
		}
		io := &ios[i]
		b := io.Buf.Bytes()
		sqe.Addr = uint64(uintptrOf(b))
		sqe.Len = uint32(len(b))
		sqe.Off = uint64(io.Off)
		sqe.UserData = uint64(io.Slot)
		sqe.IOPrio = e.prio
		if fi := e.fixedFile(io); fi >= 0 {
			sqe.Fd = int32(fi)
			sqe.Flags = uring.SQEFixedFile
		} else {
			sqe.Fd = int32(io.Handle.Fd())
		}
		if bi := e.fixedBuf(io); bi >= 0 {
			sqe.BufIndex = uint16(bi)
			sqe.Opcode = uring.OpReadFixed
			if write {
				sqe.Opcode = uring.OpWriteFixed
			}
		} else {
			sqe.Opcode = uring.OpRead
			if write {
				sqe.Opcode = uring.OpWrite
			}
		}
		i++
	}
	_, err := e.ring.Submit(0)
	return err
}

// Reap implements Engine.
func (e *uringEngine) Reap(out []IOResult) int {
	n := e.ring.Reap(e.cqes[:min(len(out), len(e.cqes))])
	for i, c := range e.cqes[:n] {
		out[i] = IOResult{Slot: int32(c.UserData), Res: int64(c.Res)}
	}
	return n
}

// pollCancel bounds a blocking wait when a context may be cancelled, so
// cancellation is seen within this delay.
const pollCancel = 20 * time.Millisecond

// Block implements Engine.
func (e *uringEngine) Block(done <-chan struct{}, need int, until time.Time) {
	timeout := time.Duration(-1)
	if !until.IsZero() {
		timeout = max(time.Until(until), 0)
	}
	if done != nil && (timeout < 0 || timeout > pollCancel) {
		timeout = pollCancel
	}
	e.ring.Wait(need, timeout)
}

// Close implements Engine.
func (e *uringEngine) Close() error { return e.ring.Close() }

// enters reports the io_uring_enter calls (Ring.Enters).
func (e *uringEngine) enters() int64 { return int64(e.ring.Enters()) }

// WrapBuffer implements BufferWrapper: the memory is registered with each
// ring's io_uring instance on first use, like a mapped Buffer.
func (u *uringBackend) WrapBuffer(mem []byte, s BufferSpec) (func() error, error) {
	return func() error { return nil }, nil
}

// OpenBuffer implements BufferOpener: a shared Buffer under /dev/shm.
func (u *uringBackend) OpenBuffer(s BufferSpec) ([]byte, func() error, error) {
	return openLocalShm(s)
}

// Hardlink implements Hardlinker with link(2).
func (u *uringBackend) Hardlink(oldname, newname string) error { return os.Link(oldname, newname) }
