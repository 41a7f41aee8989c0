//go:build linux || darwin || freebsd || netbsd

package cuda

import "github.com/ebitengine/purego"

// SystemOpener opens libraries with dlopen(RTLD_NOW|RTLD_GLOBAL) through
// github.com/ebitengine/purego, so no cgo and no CUDA toolkit are needed to
// build. It is the Opener that Open, LoadDriver(nil) and LoadNVRTC(nil) use.
type SystemOpener struct{}

// Open implements Opener.
func (SystemOpener) Open(name string) (Library, error) {
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, err
	}
	return dlLib{h}, nil
}

type dlLib struct{ h uintptr }

// Sym implements Library through purego.Dlsym.
func (l dlLib) Sym(name string) (uintptr, error) { return purego.Dlsym(l.h, name) }

// Close implements Library through purego.Dlclose.
func (l dlLib) Close() error { return purego.Dlclose(l.h) }

// ccall calls the C function fn with integer and pointer arguments and
// returns its 32-bit status (CUresult and nvrtcResult are C enums).
//
//go:uintptrescapes
func ccall(fn uintptr, args ...uintptr) int32 {
	r, _, _ := purego.SyscallN(fn, args...)
	return int32(uint32(r))
}

// ccallPtr is ccall for functions that return a pointer (nvrtcGetErrorString).
//
//go:uintptrescapes
func ccallPtr(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}
