package fs

import (
	"fmt"
	"syscall"
)

// sentinel is an error value that also matches one errno under errors.Is,
// so callers may test either errors.Is(err, fs.ErrRingFull) or
// errors.Is(err, syscall.EAGAIN), one convention for every call (upstream
// USRBIO mixes +errno and -errno returns).
type sentinel struct {
	msg   string
	errno syscall.Errno
}

// Error returns the sentinel's message.
func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is this sentinel's errno.
func (e *sentinel) Is(target error) bool {
	en, ok := target.(syscall.Errno)
	return ok && en == e.errno
}

// Unwrap returns the errno the sentinel corresponds to.
func (e *sentinel) Unwrap() error { return e.errno }

// Errors returned by the package. Each matches, under errors.Is, both itself
// and the errno USRBIO's C API returns for the same condition
// (src/lib/api/hf3fs_usrbio.h, hf3fs_prep_io and friends).
var (
	// ErrRingFull: Prep found no free slot (USRBIO -EAGAIN). Wait for
	// completions, then prep again.
	ErrRingFull error = &sentinel{"fs: ring full", syscall.EAGAIN}
	// ErrWrongDirection: the file's open mode does not allow the ring's
	// direction (a read ring on an O_WRONLY file or a write ring on an
	// O_RDONLY file; USRBIO -EACCES).
	ErrWrongDirection error = &sentinel{"fs: file open mode does not allow the ring's direction", syscall.EACCES}
	// ErrUnregistered: the File was closed or belongs to another Client
	// (USRBIO -EBADF from prep_io on an fd that reg_fd never saw).
	ErrUnregistered error = &sentinel{"fs: file not registered with this client", syscall.EBADF}
	// ErrRange: a region lies outside its buffer, crosses a block boundary,
	// belongs to another client, or an offset is negative (USRBIO -EINVAL).
	ErrRange error = &sentinel{"fs: region out of range", syscall.EINVAL}
	// ErrAlignment: an O_DIRECT request's offset, length or memory address is
	// not a multiple of the alignment statx reports (kernel -EINVAL).
	ErrAlignment error = &sentinel{"fs: O_DIRECT request not aligned", syscall.EINVAL}
	// ErrInvalid: an option or argument is out of its domain; the message
	// names it.
	ErrInvalid error = &sentinel{"fs: invalid argument", syscall.EINVAL}
	// ErrWouldStall: Wait asked for more completions than can ever arrive
	// from I/O already submitted (for example "exactly n" batching with
	// fewer than n prepped). Upstream hangs here; this package fails fast.
	ErrWouldStall error = &sentinel{"fs: wait would stall: not enough I/O submitted to reach min", syscall.EDEADLK}
	// ErrClosed: the Client, Ring, Buffer or File is closed.
	ErrClosed error = &sentinel{"fs: use of closed object", syscall.EBADF}
	// ErrBusy: a Buffer or File still has I/O in flight.
	ErrBusy error = &sentinel{"fs: object has I/O in flight", syscall.EBUSY}
	// ErrUnsupported: the backend cannot do what was asked (unknown backend
	// name, a flag it does not implement, io_uring refused by the kernel).
	ErrUnsupported error = &sentinel{"fs: not supported by this backend", syscall.EOPNOTSUPP}
	// ErrTimeout: Wait saw no completion, or Close could not drain the
	// I/O in flight, within RingOpts.Timeout (a hung daemon or device).
	ErrTimeout error = &sentinel{"fs: I/O in flight did not complete within the ring's timeout", syscall.ETIMEDOUT}
)

// errInvalidf returns an error wrapping ErrInvalid with the formatted
// detail, which names the option or argument.
func errInvalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}
