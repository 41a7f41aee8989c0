package fs

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// osFile is an OS file descriptor owned by a File (posix and uring).
type osFile struct {
	f   *os.File
	fdn int
}

func (o *osFile) fd() int                    { return o.fdn }
func (o *osFile) stat() (os.FileInfo, error) { return o.f.Stat() }
func (o *osFile) sync() error                { return o.f.Sync() }
func (o *osFile) close() error               { return o.f.Close() }

func openOS(name string, flag int, perm os.FileMode) (fileImpl, error) {
	fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	// os.NewFile keeps the descriptor in blocking mode: Fd() is stable and
	// the runtime poller is not involved.
	return &osFile{f: os.NewFile(uintptr(fd), name), fdn: fd}, nil
}

func dupOS(f *os.File) (fileImpl, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: nil *os.File", ErrInvalid)
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fs: register %s: %w", f.Name(), err)
	}
	var nfd int
	var derr error
	if err := sc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("fs: register %s: %w", f.Name(), err)
	}
	if derr != nil {
		return nil, fmt.Errorf("fs: register %s: dup: %w", f.Name(), derr)
	}
	return &osFile{f: os.NewFile(uintptr(nfd), f.Name()), fdn: nfd}, nil
}

// posixBackend runs requests on a worker pool with pread/pwrite, the
// portable reference backend.
type posixBackend struct {
	pool *workerPool
	note string
}

func newPosixBackend(workers int) *posixBackend {
	return &posixBackend{pool: newWorkerPool(workers)}
}

func (p *posixBackend) features() Features {
	return Features{Backend: "posix", ZeroCopy: true, Note: p.note}
}

func (p *posixBackend) openFile(name string, flag int, perm os.FileMode) (fileImpl, error) {
	return openOS(name, flag, perm)
}

func (p *posixBackend) registerFile(f *os.File) (fileImpl, error) { return dupOS(f) }

func (p *posixBackend) newEngine(r *Ring) (engine, error) {
	return newPoolEngine(r, p.pool, posixIO), nil
}

func (p *posixBackend) close() error {
	p.pool.close()
	return nil
}

// posixIO performs one request with a single pread or pwrite (a short
// count is reported as is, like a 3FS CQE).
func posixIO(op Op, s *slotReq, _ RingFlags) int64 {
	fd := s.file.impl.fd()
	b := s.reg.Bytes()
	for {
		var n int
		var err error
		if op == Read {
			n, err = unix.Pread(fd, b, s.off)
		} else {
			n, err = unix.Pwrite(fd, b, s.off)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if en, ok := err.(syscall.Errno); ok {
				return -int64(en)
			}
			return -int64(unix.EIO)
		}
		return int64(n)
	}
}
