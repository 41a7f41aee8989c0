//go:build unix

package fs

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// osFile is an OS file descriptor owned by a File (posix, uring, hf3fs).
type osFile struct {
	f   *os.File
	fdn int
}

// Fd implements BackendFile.
func (o *osFile) Fd() int { return o.fdn }

// Stat implements BackendFile.
func (o *osFile) Stat() (os.FileInfo, error) { return o.f.Stat() }

// Sync implements BackendFile.
func (o *osFile) Sync() error { return o.f.Sync() }

// Close implements BackendFile.
func (o *osFile) Close() error { return o.f.Close() }

func openOS(name string, flag int, perm os.FileMode) (*osFile, error) {
	fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	// os.NewFile keeps the descriptor in blocking mode: Fd() is stable and
	// the runtime poller is not involved.
	return &osFile{f: os.NewFile(uintptr(fd), name), fdn: fd}, nil
}

func dupOS(f *os.File) (*osFile, error) {
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

// fileFlags returns a descriptor's open flags (F_GETFL).
func fileFlags(fd int) (int, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return 0, fmt.Errorf("F_GETFL: %w", err)
	}
	return fl, nil
}

func probePosix() error { return nil }

// posixBackend runs requests on a worker pool with pread/pwrite, the
// portable reference backend.
type posixBackend struct {
	pool *workerPool
	note string
}

func newPosixBackend(workers int) *posixBackend {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0) * 4
	}
	return &posixBackend{pool: newWorkerPool(workers)}
}

// Features implements Backend.
func (p *posixBackend) Features() Features {
	return Features{Backend: "posix", ZeroCopy: true, Note: p.note}
}

// OpenFile implements Backend.
func (p *posixBackend) OpenFile(name string, flag int, perm os.FileMode) (BackendFile, error) {
	o, err := openOS(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// RegisterFile implements Backend.
func (p *posixBackend) RegisterFile(f *os.File) (BackendFile, error) {
	o, err := dupOS(f)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// MapBuffer implements Backend with anonymous memory.
func (p *posixBackend) MapBuffer(s BufferSpec) ([]byte, func() error, error) { return mapLocal(s) }

// NewEngine implements Backend.
func (p *posixBackend) NewEngine(o RingOpts) (Engine, error) {
	return newPoolEngine(o, p.pool, posixIO), nil
}

// Close implements Backend.
func (p *posixBackend) Close() error {
	p.pool.close()
	return nil
}

// posixIO performs one request with a single pread or pwrite (a short
// count is reported as is, like a 3FS CQE).
func posixIO(op Op, io *IO, _ RingFlags) int64 {
	fd := io.Handle.Fd()
	if fd < 0 {
		return -int64(unix.EBADF)
	}
	b := io.Buf.Bytes()
	for {
		var n int
		var err error
		if op == Read {
			n, err = unix.Pread(fd, b, io.Off)
		} else {
			n, err = unix.Pwrite(fd, b, io.Off)
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

// WrapBuffer implements BufferWrapper: the memory is used in place.
func (p *posixBackend) WrapBuffer(mem []byte, s BufferSpec) (func() error, error) {
	return func() error { return nil }, nil
}

// OpenBuffer implements BufferOpener: a shared Buffer under /dev/shm.
func (p *posixBackend) OpenBuffer(s BufferSpec) ([]byte, func() error, error) {
	return openLocalShm(s)
}

// Hardlink implements Hardlinker with link(2).
func (p *posixBackend) Hardlink(oldname, newname string) error { return os.Link(oldname, newname) }
