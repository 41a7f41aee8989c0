//go:build !unix

package fs

import (
	"fmt"
	"os"
)

// errNoPosix is why the OS-file backends are missing here.
var errNoPosix = fmt.Errorf("%w: the posix, uring and hf3fs backends need a Unix system (the mem backend works everywhere)", ErrUnsupported)

func probePosix() error { return errNoPosix }

func fileFlags(fd int) (int, error) { return 0, errNoPosix }

// posixBackend is not available off Unix; probePosix says so before one
// is made, and every method fails with ErrUnsupported.
type posixBackend struct{ note string }

func newPosixBackend(workers int) *posixBackend { return &posixBackend{} }

// Features implements Backend.
func (p *posixBackend) Features() Features { return Features{Backend: "posix", Note: p.note} }

// OpenFile implements Backend: ErrUnsupported.
func (p *posixBackend) OpenFile(name string, flag int, perm os.FileMode) (BackendFile, error) {
	return nil, errNoPosix
}

// RegisterFile implements Backend: ErrUnsupported.
func (p *posixBackend) RegisterFile(f *os.File) (BackendFile, error) { return nil, errNoPosix }

// MapBuffer implements Backend.
func (p *posixBackend) MapBuffer(s BufferSpec) ([]byte, func() error, error) { return mapLocal(s) }

// NewEngine implements Backend: ErrUnsupported.
func (p *posixBackend) NewEngine(o RingOpts) (Engine, error) { return nil, errNoPosix }

// Close implements Backend.
func (p *posixBackend) Close() error { return nil }
