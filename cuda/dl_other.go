//go:build !(linux || darwin || freebsd || netbsd)

package cuda

import "errors"

var errNoDL = errors.New("dynamic loading is not supported on this platform")

// SystemOpener would open libraries with dlopen; on this platform it always
// fails, so every load reports ErrUnavailable.
type SystemOpener struct{}

// Open implements Opener; it always fails here.
func (SystemOpener) Open(name string) (Library, error) { return nil, errNoDL }

// ccall cannot call C here; it answers CUDA_ERROR_NOT_SUPPORTED.
func ccall(fn uintptr, args ...uintptr) int32 { return cudaErrorNotSupported }

func ccallPtr(fn uintptr, args ...uintptr) uintptr { return 0 }
