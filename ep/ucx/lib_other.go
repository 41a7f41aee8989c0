//go:build !linux

package ucx

import (
	"errors"
	"fmt"
	"runtime"
)

func dlopen(name string) (uintptr, error) {
	return 0, errors.New("UCX is loaded only on Linux")
}

func loadLib() (*lib, error) {
	return nil, fmt.Errorf("%w: UCX is supported on Linux only, not %s", ErrUnavailable, runtime.GOOS)
}

func ccall(fn uintptr, args ...uintptr) uintptr {
	panic("ucx: no C calls on " + runtime.GOOS)
}

func errCallback() uintptr { return 0 }
