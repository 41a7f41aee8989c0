package fs

import "github.com/fireflyer-go/fireflyer/internal/uring"

// RefuseURing makes io_uring setup fail with uring.ErrUnsupported until
// the returned function is called, so tests exercise the fallback to
// posix on a kernel that has io_uring.
func RefuseURing() (restore func()) {
	old := uringSetup
	uringSetup = func(int) (*uring.Ring, error) { return nil, uring.ErrUnsupported }
	return func() { uringSetup = old }
}
