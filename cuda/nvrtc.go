package cuda

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

const (
	nvVersion = iota
	nvGetErrorString
	nvCreateProgram
	nvDestroyProgram
	nvCompileProgram
	nvGetProgramLogSize
	nvGetProgramLog
	nvGetCUBINSize
	nvGetCUBIN
	nvGetPTXSize
	nvGetPTX
	nvAddNameExpression
	nvGetLoweredName
	numNVRTCFns
)

var nvrtcSymbols = [numNVRTCFns]symbol{
	nvVersion:           {name: "nvrtcVersion"},
	nvGetErrorString:    {name: "nvrtcGetErrorString"},
	nvCreateProgram:     {name: "nvrtcCreateProgram"},
	nvDestroyProgram:    {name: "nvrtcDestroyProgram"},
	nvCompileProgram:    {name: "nvrtcCompileProgram"},
	nvGetProgramLogSize: {name: "nvrtcGetProgramLogSize"},
	nvGetProgramLog:     {name: "nvrtcGetProgramLog"},
	nvGetCUBINSize:      {name: "nvrtcGetCUBINSize"},
	nvGetCUBIN:          {name: "nvrtcGetCUBIN"},
	nvGetPTXSize:        {name: "nvrtcGetPTXSize"},
	nvGetPTX:            {name: "nvrtcGetPTX"},
	nvAddNameExpression: {name: "nvrtcAddNameExpression"},
	nvGetLoweredName:    {name: "nvrtcGetLoweredName"},
}

// NVRTCSymbols returns the NVRTC entry points LoadNVRTC resolves.
func NVRTCSymbols() []string {
	out := make([]string, len(nvrtcSymbols))
	for i, s := range nvrtcSymbols {
		out[i] = s.name
	}
	return out
}

// NVRTC is the CUDA run-time compiler (libnvrtc.so.*) loaded at run time.
// Compile is safe for concurrent use (NVRTC programs are independent).
//
// Upstream: NVRTC (nvrtc.h), as DeepGEMM uses it with DG_JIT_USE_NVRTC=1
// (csrc/jit/compiler.hpp, NVRTCCompiler).
type NVRTC struct {
	lib          Library
	path         string
	fns          []uintptr
	major, minor int
}

// LoadNVRTC opens NVRTC through op (SystemOpener when op is nil), trying
// NVRTCLibraryNames in order, resolves its entry points and reads its
// version. Failure wraps ErrUnavailable and lists what was tried.
func LoadNVRTC(op Opener) (*NVRTC, error) {
	if op == nil {
		op = SystemOpener{}
	}
	lib, path, err := openFirst(op, "NVRTC", NVRTCLibraryNames())
	if err != nil {
		return nil, err
	}
	fns, err := resolve(lib, path, nvrtcSymbols[:])
	if err != nil {
		lib.Close()
		return nil, err
	}
	n := &NVRTC{lib: lib, path: path, fns: fns}
	var major, minor int32
	if err := n.call(nvVersion, uintptr(unsafe.Pointer(&major)), uintptr(unsafe.Pointer(&minor))); err != nil {
		lib.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	n.major, n.minor = int(major), int(minor)
	return n, nil
}

var (
	sysNVRTCOnce sync.Once
	sysNVRTC     *NVRTC
	sysNVRTCErr  error
)

// SystemNVRTC returns the process's NVRTC, loaded once with SystemOpener.
func SystemNVRTC() (*NVRTC, error) {
	sysNVRTCOnce.Do(func() { sysNVRTC, sysNVRTCErr = LoadNVRTC(SystemOpener{}) })
	return sysNVRTC, sysNVRTCErr
}

// Version returns NVRTC's version (nvrtcVersion), e.g. 13, 0.
func (n *NVRTC) Version() (major, minor int) { return n.major, n.minor }

// Path returns the library file NVRTC was loaded from.
func (n *NVRTC) Path() string { return n.path }

// Close releases the library.
func (n *NVRTC) Close() error { return n.lib.Close() }

//go:uintptrescapes
func (n *NVRTC) call(id int, args ...uintptr) error {
	if code := ccall(n.fns[id], args...); code != 0 {
		return n.statusError(nvrtcSymbols[id].name, int(code))
	}
	return nil
}

func (n *NVRTC) statusError(fn string, code int) *Error {
	e := &Error{Func: fn, Code: code, nvrtc: true}
	if p := ccallPtr(n.fns[nvGetErrorString], uintptr(code)); p != 0 {
		e.Name = goString(*(*unsafe.Pointer)(unsafe.Pointer(&p)))
	}
	if e.Name == "" {
		e.Name = fmt.Sprintf("nvrtcResult %d", code)
	}
	return e
}

// Program is one NVRTC compilation: a single self-contained source (no
// include paths), options such as "--gpu-architecture=sm_90a", and the
// name expressions (template instantiations such as
// "fp8_gemm_nt<64, 64, 1>") whose mangled names Compile reports.
type Program struct {
	Name            string   // file name shown in diagnostics, e.g. "fp8_gemm.cu"
	Source          string   // CUDA C++ source
	Options         []string // nvrtcCompileProgram options
	NameExpressions []string // __global__ functions to instantiate and look up
	PTX             bool     // return PTX instead of CUBIN (needed for compute_XX targets)
}

// Compiled is the output of a successful compilation.
type Compiled struct {
	Image   []byte            // CUBIN (or PTX, NUL-terminated, when Program.PTX) for cuModuleLoadData
	Lowered map[string]string // name expression -> mangled kernel name for cuModuleGetFunction
	Log     string            // compiler log (warnings); empty when clean
}

// Compile compiles p. A compilation error is an *Error whose Log holds the
// compiler's messages; bad arguments wrap ErrInvalid.
func (n *NVRTC) Compile(p Program) (*Compiled, error) {
	if p.Source == "" {
		return nil, fmt.Errorf("%w: Program.Source is empty", ErrInvalid)
	}
	if p.Name == "" {
		p.Name = "kernel.cu"
	}
	src, name := cstr(p.Source), cstr(p.Name)
	var prog uintptr
	if err := n.call(nvCreateProgram, uintptr(unsafe.Pointer(&prog)), uintptr(unsafe.Pointer(&src[0])),
		uintptr(unsafe.Pointer(&name[0])), 0, 0, 0); err != nil {
		return nil, err
	}
	defer func() { n.call(nvDestroyProgram, uintptr(unsafe.Pointer(&prog))) }()
	exprs := make([][]byte, len(p.NameExpressions))
	for i, e := range p.NameExpressions {
		exprs[i] = cstr(e)
		if err := n.call(nvAddNameExpression, prog, uintptr(unsafe.Pointer(&exprs[i][0]))); err != nil {
			return nil, fmt.Errorf("name expression %q: %w", e, err)
		}
	}
	opts, keep := cStringArray(p.Options)
	var optp uintptr
	if len(opts) > 0 {
		optp = uintptr(unsafe.Pointer(&opts[0]))
	}
	cerr := n.call(nvCompileProgram, prog, uintptr(len(opts)), optp)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(exprs)
	log := n.programLog(prog)
	if cerr != nil {
		e := cerr.(*Error)
		e.Log = log
		return nil, e
	}
	out := &Compiled{Log: log, Lowered: map[string]string{}}
	sizeFn, getFn := nvGetCUBINSize, nvGetCUBIN
	if p.PTX {
		sizeFn, getFn = nvGetPTXSize, nvGetPTX
	}
	var size uintptr
	if err := n.call(sizeFn, prog, uintptr(unsafe.Pointer(&size))); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("%w: NVRTC produced an empty image (is the architecture option a real sm_XX target?)", ErrInvalid)
	}
	img := make([]byte, size)
	if err := n.call(getFn, prog, uintptr(unsafe.Pointer(&img[0]))); err != nil {
		return nil, err
	}
	out.Image = img
	for i, e := range p.NameExpressions {
		var lp unsafe.Pointer
		if err := n.call(nvGetLoweredName, prog, uintptr(unsafe.Pointer(&exprs[i][0])), uintptr(unsafe.Pointer(&lp))); err != nil {
			return nil, fmt.Errorf("lowered name of %q: %w", e, err)
		}
		out.Lowered[e] = goString(lp)
	}
	return out, nil
}

func (n *NVRTC) programLog(prog uintptr) string {
	var size uintptr
	if n.call(nvGetProgramLogSize, prog, uintptr(unsafe.Pointer(&size))) != nil || size <= 1 {
		return ""
	}
	buf := make([]byte, size)
	if n.call(nvGetProgramLog, prog, uintptr(unsafe.Pointer(&buf[0]))) != nil {
		return ""
	}
	return strings.TrimRight(string(buf[:size-1]), "\n\x00")
}

// cStringArray returns a C array of pointers to NUL-terminated copies of ss,
// and the copies, which the caller keeps alive until the C call returns.
func cStringArray(ss []string) ([]uintptr, [][]byte) {
	keep := make([][]byte, len(ss))
	ptrs := make([]uintptr, len(ss))
	for i, s := range ss {
		keep[i] = cstr(s)
		ptrs[i] = uintptr(unsafe.Pointer(&keep[i][0]))
	}
	return ptrs, keep
}
