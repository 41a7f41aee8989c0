//go:build !linux

package fs

import "fmt"

// uringBackend is not available off Linux; newUringBackend says so.
type uringBackend struct {
	posixBackend
	note string
}

// Close implements Backend.
func (u *uringBackend) Close() error { return nil }

func newUringBackend() (*uringBackend, error) {
	return nil, fmt.Errorf("%w: io_uring is Linux-only", ErrUnsupported)
}
