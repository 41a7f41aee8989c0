//go:build !linux

package fs

import "fmt"

type uringBackend struct{ posixBackend }

func newUringBackend() (*uringBackend, error) {
	return nil, fmt.Errorf("%w: io_uring is Linux-only", ErrUnsupported)
}

// Enters returns the number of io_uring_enter calls the ring made, or -1
// when the ring is not on the uring backend (always, off Linux).
func (r *Ring) Enters() int64 { return -1 }
