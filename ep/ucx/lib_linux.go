//go:build linux

package ucx

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

func dlopen(name string) (uintptr, error) {
	return purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func loadLib() (*lib, error) {
	l := &lib{}
	// libc first: UCX must not take over the signals the Go runtime
	// handles (SIGSEGV, SIGBUS, ...), and libucs reads its global options
	// when it is loaded, so the environment is set in C before that.
	libc, _, err := openFirst("c")
	if err != nil {
		return nil, err
	}
	handles := map[string]uintptr{"c": libc}
	if p, err := purego.Dlsym(libc, "setenv"); err == nil {
		name, val := cstr("UCX_ERROR_SIGNALS"), cstr("")
		ccall(p, uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&val[0])), 0) // 0: keep a user's setting
	}
	for _, which := range []string{"ucs", "ucp"} {
		h, _, err := openFirst(which)
		if err != nil {
			return nil, err
		}
		handles[which] = h
	}
	var missing []string
	for i, s := range symbols {
		p, err := purego.Dlsym(handles[s.lib], s.name)
		if err != nil || p == 0 {
			missing = append(missing, s.name)
			continue
		}
		l.fns[i] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the loaded UCX lacks %s (UCX older than 1.13?); %s", ErrUnavailable, strings.Join(missing, ", "), InstallHint)
	}
	var major, minor, release uint32
	ccall(l.fns[fnGetVersion], uintptr(unsafe.Pointer(&major)), uintptr(unsafe.Pointer(&minor)), uintptr(unsafe.Pointer(&release)))
	l.major, l.minor = major, minor
	l.version = fmt.Sprintf("%d.%d.%d", major, minor, release)
	if major != ucpAPIMajor || minor < ucpAPIMinor {
		return nil, fmt.Errorf("%w: UCX %s is older than 1.13, the version whose API this package speaks; %s", ErrUnavailable, l.version, InstallHint)
	}
	return l, nil
}

var (
	errCBOnce sync.Once
	errCB     uintptr
)

// errCallback returns the C function pointer of epFailed (made once).
func errCallback() uintptr {
	errCBOnce.Do(func() {
		errCB = purego.NewCallback(func(arg, ep, status uintptr) uintptr {
			epFailed(arg, ep, status)
			return 0
		})
	})
	return errCB
}

// ccall calls the C function fn with integer and pointer arguments and
// returns the raw result register.
//
//go:uintptrescapes
func ccall(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}
