//go:build !cgo

package cuda

import "fmt"

// Devices lists the GPUs of this machine. This build has no cgo, so NVML
// cannot be loaded: it always returns an error wrapping ErrUnavailable.
func Devices() ([]GPU, error) {
	return nil, fmt.Errorf("%w: built without cgo (go-nvml needs it; rebuild with CGO_ENABLED=1)", ErrUnavailable)
}
