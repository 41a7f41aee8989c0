package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Library is an opened shared library.
type Library interface {
	// Sym returns the address of the exported C function name.
	Sym(name string) (uintptr, error)
	// Close releases the library. Functions resolved from it must not be
	// called afterwards.
	Close() error
}

// Opener opens a shared library by file name or path, as dlopen does. The
// system implementation is SystemOpener; tests pass a fake that returns
// function pointers of their own, so the whole loading and calling path
// runs without a driver.
type Opener interface {
	Open(name string) (Library, error)
}

// Environment variables that name library files explicitly; they are tried
// before the built-in search lists.
const (
	EnvLibCUDA  = "FIREFLYER_LIBCUDA"  // path of libcuda.so.1
	EnvLibNVRTC = "FIREFLYER_LIBNVRTC" // path of libnvrtc.so.*
)

// DriverLibraryNames lists the names tried, in order, for the CUDA driver.
func DriverLibraryNames() []string {
	return withEnv(EnvLibCUDA, []string{"libcuda.so.1", "libcuda.so"})
}

// NVRTCLibraryNames lists the names tried, in order, for NVRTC: the
// versioned sonames (CUDA 13, then 12) and the plain name, first as given
// (the loader's path: LD_LIBRARY_PATH, ld.so.cache), then under
// $CUDA_HOME/lib64, $CUDA_PATH/lib64 and /usr/local/cuda/lib64.
func NVRTCLibraryNames() []string {
	sonames := []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}
	names := append([]string(nil), sonames...)
	seen := map[string]bool{}
	for _, root := range []string{os.Getenv("CUDA_HOME"), os.Getenv("CUDA_PATH"), "/usr/local/cuda"} {
		if root == "" || seen[root] {
			continue
		}
		seen[root] = true
		for _, s := range sonames {
			names = append(names, filepath.Join(root, "lib64", s))
		}
	}
	return withEnv(EnvLibNVRTC, names)
}

func withEnv(env string, names []string) []string {
	if p := os.Getenv(env); p != "" {
		return append([]string{p}, names...)
	}
	return names
}

// openFirst opens the first name that loads. When none does, the error
// wraps ErrUnavailable and lists each name with the loader's reason.
func openFirst(op Opener, what string, names []string) (Library, string, error) {
	if op == nil {
		return nil, "", fmt.Errorf("%w: no library opener", ErrUnavailable)
	}
	var why []string
	for _, n := range names {
		lib, err := op.Open(n)
		if err == nil {
			return lib, n, nil
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, n) { // dlerror already names the file
			msg = n + ": " + msg
		}
		why = append(why, msg)
	}
	return nil, "", fmt.Errorf("%w: cannot load %s (%s)", ErrUnavailable, what, strings.Join(why, "; "))
}

// symbol describes one entry point to resolve.
type symbol struct {
	name     string
	optional bool // absent in older drivers; calls that need it fail with ErrNotSupported
}

// resolve looks up every symbol; a missing required one fails the load with
// an error wrapping ErrUnavailable that names it.
func resolve(lib Library, path string, syms []symbol) ([]uintptr, error) {
	fns := make([]uintptr, len(syms))
	var missing []string
	for i, s := range syms {
		p, err := lib.Sym(s.name)
		if err != nil || p == 0 {
			if !s.optional {
				missing = append(missing, s.name)
			}
			continue
		}
		fns[i] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s lacks %s (driver or NVRTC too old?)", ErrUnavailable, path, strings.Join(missing, ", "))
	}
	return fns, nil
}
