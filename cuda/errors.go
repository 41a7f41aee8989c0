package cuda

import (
	"errors"
	"fmt"
)

// Sentinel errors. Driver and NVRTC failures are *Error values; they match
// these with errors.Is where the meaning is the same.
var (
	// ErrOutOfMemory reports that a device allocation failed for lack of
	// memory (CUDA_ERROR_OUT_OF_MEMORY).
	ErrOutOfMemory = errors.New("cuda: out of device memory")
	// ErrNotSupported reports that the loaded driver lacks an entry point a
	// call needs (for example cuLaunchKernelEx before CUDA 12.0) or that the
	// driver answered CUDA_ERROR_NOT_SUPPORTED.
	ErrNotSupported = errors.New("cuda: not supported by this driver")
	// ErrClosed reports a call on a Context, Buffer, Module, Stream or Event
	// that was already closed or freed.
	ErrClosed = errors.New("cuda: closed")
	// ErrInvalid reports a bad argument caught before the driver is called;
	// the message names the argument.
	ErrInvalid = errors.New("cuda: invalid argument")
)

// CUDA driver status codes this package interprets (cuda.h, CUresult).
const (
	cudaSuccess              = 0
	cudaErrorInvalidValue    = 1
	cudaErrorOutOfMemory     = 2
	cudaErrorNotInitialized  = 3
	cudaErrorNoDevice        = 100
	cudaErrorStubLibrary     = 34
	cudaErrorInsufficientDrv = 35
	cudaErrorDevUnavailable  = 46
	cudaErrorNotSupported    = 801
	cudaErrorSystemDriver    = 803
	cudaErrorCompatNotSupp   = 804
)

// Error is a failed CUDA driver or NVRTC call: the entry point, the numeric
// status, the library's name for it (cuGetErrorName / nvrtcGetErrorString)
// and its message (cuGetErrorString). For a failed NVRTC compilation Log
// holds the compiler's log.
//
// Error matches ErrUnavailable (no device, insufficient or stub driver),
// ErrOutOfMemory and ErrNotSupported with errors.Is.
type Error struct {
	Func    string // entry point, e.g. "cuMemAlloc_v2" or "nvrtcCompileProgram"
	Code    int    // CUresult or nvrtcResult
	Name    string // e.g. "CUDA_ERROR_OUT_OF_MEMORY" or "NVRTC_ERROR_COMPILATION"
	Message string // e.g. "out of memory"; empty when the library gives none
	Log     string // NVRTC program log (compilation errors only)
	nvrtc   bool
}

// Error formats "cuda: <Func>: <Name> (<Message>)", then the NVRTC log on
// its own lines when there is one.
func (e *Error) Error() string {
	s := fmt.Sprintf("cuda: %s: %s", e.Func, e.Name)
	if e.Message != "" && e.Message != e.Name {
		s += " (" + e.Message + ")"
	}
	if e.Log != "" {
		s += "\n" + e.Log
	}
	return s
}

// Is reports whether the status has the meaning of one of the sentinels.
func (e *Error) Is(target error) bool {
	if e.nvrtc {
		return false
	}
	switch target {
	case ErrUnavailable:
		switch e.Code {
		case cudaErrorNoDevice, cudaErrorStubLibrary, cudaErrorInsufficientDrv,
			cudaErrorDevUnavailable, cudaErrorSystemDriver, cudaErrorCompatNotSupp:
			return true
		}
	case ErrOutOfMemory:
		return e.Code == cudaErrorOutOfMemory
	case ErrNotSupported:
		return e.Code == cudaErrorNotSupported
	}
	return false
}
