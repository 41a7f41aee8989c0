//go:build !(nvml && cgo)

package cuda

import "sync"

var (
	nvmlOnce sync.Once
	nvmlDL   *dlNVML
	nvmlErr  error
)

// Devices lists the GPUs of this machine through NVML (libnvidia-ml.so.1,
// loaded at run time with dlopen through github.com/ebitengine/purego, so
// neither cgo nor NVML's header is needed to build). NVML is initialised
// once per process; if that fails, every call returns the same error
// wrapping ErrUnavailable and NVML is never touched again. Every error wraps
// ErrUnavailable, including a device NVML cannot open (e.g. "GPU is lost").
// Building with -tags nvml (and cgo) binds NVML through
// github.com/NVIDIA/go-nvml instead, with the same results.
func Devices() ([]GPU, error) {
	nvmlOnce.Do(func() { nvmlDL, nvmlErr = loadNVML(SystemOpener{}) })
	if nvmlErr != nil {
		return nil, nvmlErr
	}
	return nvmlDL.devices()
}
