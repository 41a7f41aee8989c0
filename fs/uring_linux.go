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
type uringBackend struct{}

func newUringBackend() (*uringBackend, error) {
	r, err := uring.Setup(4)
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

func (u *uringBackend) features() Features {
	return Features{Backend: "uring", ZeroCopy: true, FixedBuffers: true, FixedFiles: true, Priorities: true}
}

func (u *uringBackend) openFile(name string, flag int, perm os.FileMode) (fileImpl, error) {
	return openOS(name, flag, perm)
}

func (u *uringBackend) registerFile(f *os.File) (fileImpl, error) { return dupOS(f) }

func (u *uringBackend) close() error { return nil }

// ioprio values (include/uapi/linux/ioprio.h): class << 13 | level.
const (
	ioprioClassBE = 2
	ioprioHigh    = ioprioClassBE << 13 // level 0, the highest best-effort level
	ioprioLow     = ioprioClassBE<<13 | 7
)

type uringEngine struct {
	r     *Ring
	ring  *uring.Ring
	files []int8 // per client file index: 0 unknown, 1 registered, -1 not registrable
	bufs  []int8 // per client buffer index: same
	cqes  []uring.CQE
	prio  uint16
}

func (u *uringBackend) newEngine(r *Ring) (engine, error) {
	ring, err := uring.Setup(r.opts.Entries)
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
	e := &uringEngine{r: r, ring: ring, files: make([]int8, nf), bufs: make([]int8, maxBuffers), cqes: make([]uring.CQE, r.opts.Entries)}
	switch r.opts.Priority {
	case High:
		e.prio = ioprioHigh
	case Low:
		e.prio = ioprioLow
	}
	return e, nil
}

// fixedFile returns the registered-file index for f, registering it on
// first use, or -1 to use the plain descriptor.
func (e *uringEngine) fixedFile(f *File) int {
	if f.idx >= len(e.files) {
		return -1
	}
	switch e.files[f.idx] {
	case 1:
		return f.idx
	case -1:
		return -1
	}
	if err := e.ring.UpdateFile(f.idx, f.impl.fd()); err != nil {
		e.files[f.idx] = -1
		return -1
	}
	e.files[f.idx] = 1
	return f.idx
}

// fixedBuf is fixedFile for buffers (io_uring limits a registered buffer to
// 1 GiB; larger ones use plain READ/WRITE).
func (e *uringEngine) fixedBuf(b *Buffer) int {
	if b.idx >= len(e.bufs) {
		return -1
	}
	switch e.bufs[b.idx] {
	case 1:
		return b.idx
	case -1:
		return -1
	}
	if len(b.mem) > 1<<30 || e.ring.UpdateBuffer(b.idx, b.mem) != nil {
		e.bufs[b.idx] = -1
		return -1
	}
	e.bufs[b.idx] = 1
	return b.idx
}

func (e *uringEngine) forgetFile(f *File) {
	if f.idx < len(e.files) && e.files[f.idx] != 0 {
		if e.files[f.idx] == 1 {
			e.ring.UpdateFile(f.idx, -1)
		}
		e.files[f.idx] = 0
	}
}

func (e *uringEngine) forgetBuffer(b *Buffer) {
	if b.idx < len(e.bufs) && e.bufs[b.idx] != 0 {
		if e.bufs[b.idx] == 1 {
			e.ring.UpdateBuffer(b.idx, nil)
		}
		e.bufs[b.idx] = 0
	}
}

func (e *uringEngine) submit(batch []int32) error {
	write := e.r.opts.Op == Write
	for i := 0; i < len(batch); {
		sqe := e.ring.GetSQE()
		if sqe == nil {
			// The SQ is at least Entries long, so this happens only if the
			// kernel has not consumed earlier SQEs yet: push them now.
			if _, err := e.ring.Submit(0); err != nil {
				return err
			}
			continue
		}
		s := &e.r.slots[batch[i]]
		b := s.reg.Bytes()
		sqe.Addr = uint64(uintptrOf(b))
		sqe.Len = uint32(len(b))
		sqe.Off = uint64(s.off)
		sqe.UserData = uint64(batch[i])
		sqe.IOPrio = e.prio
		if fi := e.fixedFile(s.file); fi >= 0 {
			sqe.Fd = int32(fi)
			sqe.Flags = uring.SQEFixedFile
		} else {
			sqe.Fd = int32(s.file.impl.fd())
		}
		if bi := e.fixedBuf(s.reg.buf); bi >= 0 {
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

func (e *uringEngine) reap(out []cqe) int {
	n := e.ring.Reap(e.cqes[:min(len(out), len(e.cqes))])
	for i, c := range e.cqes[:n] {
		out[i] = cqe{slot: int32(c.UserData), res: int64(c.Res)}
	}
	return n
}

// pollCancel bounds a blocking wait when a context may be cancelled, so
// cancellation is seen within this delay.
const pollCancel = 20 * time.Millisecond

func (e *uringEngine) block(done <-chan struct{}, need int, until time.Time) {
	timeout := time.Duration(-1)
	if !until.IsZero() {
		timeout = max(time.Until(until), 0)
	}
	if done != nil && (timeout < 0 || timeout > pollCancel) {
		timeout = pollCancel
	}
	e.ring.Wait(need, timeout)
}

func (e *uringEngine) close() error { return e.ring.Close() }

// Enters returns the number of io_uring_enter calls the ring made, or -1
// when the ring is not on the uring backend.
func (r *Ring) Enters() int64 {
	if e, ok := r.eng.(*uringEngine); ok {
		return int64(e.ring.Enters())
	}
	return -1
}
