package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// Driver entry points, resolved by their exported (versioned) names: cuda.h
// #defines cuMemAlloc to cuMemAlloc_v2 and so on, and dlsym sees only the
// exported name.
const (
	fnInit = iota
	fnDriverGetVersion
	fnDeviceGetCount
	fnDeviceGet
	fnDeviceGetAttribute
	fnDeviceGetName
	fnDeviceTotalMem
	fnGetErrorName
	fnGetErrorString
	fnPrimaryCtxRetain
	fnPrimaryCtxRelease
	fnCtxSetCurrent
	fnCtxSynchronize
	fnMemAlloc
	fnMemFree
	fnMemGetInfo
	fnMemcpyHtoD
	fnMemcpyDtoH
	fnMemcpyDtoD
	fnMemsetD8
	fnStreamCreate
	fnStreamSynchronize
	fnStreamDestroy
	fnEventCreate
	fnEventRecord
	fnEventSynchronize
	fnEventElapsedTime
	fnEventDestroy
	fnModuleLoadData
	fnModuleGetFunction
	fnModuleUnload
	fnFuncSetAttribute
	fnLaunchKernel
	fnLaunchKernelEx
	fnTensorMapEncodeTiled
	numDriverFns
)

var driverSymbols = [numDriverFns]symbol{
	fnInit:                 {name: "cuInit"},
	fnDriverGetVersion:     {name: "cuDriverGetVersion"},
	fnDeviceGetCount:       {name: "cuDeviceGetCount"},
	fnDeviceGet:            {name: "cuDeviceGet"},
	fnDeviceGetAttribute:   {name: "cuDeviceGetAttribute"},
	fnDeviceGetName:        {name: "cuDeviceGetName"},
	fnDeviceTotalMem:       {name: "cuDeviceTotalMem_v2"},
	fnGetErrorName:         {name: "cuGetErrorName"},
	fnGetErrorString:       {name: "cuGetErrorString"},
	fnPrimaryCtxRetain:     {name: "cuDevicePrimaryCtxRetain"},
	fnPrimaryCtxRelease:    {name: "cuDevicePrimaryCtxRelease_v2"},
	fnCtxSetCurrent:        {name: "cuCtxSetCurrent"},
	fnCtxSynchronize:       {name: "cuCtxSynchronize"},
	fnMemAlloc:             {name: "cuMemAlloc_v2"},
	fnMemFree:              {name: "cuMemFree_v2"},
	fnMemGetInfo:           {name: "cuMemGetInfo_v2"},
	fnMemcpyHtoD:           {name: "cuMemcpyHtoD_v2"},
	fnMemcpyDtoH:           {name: "cuMemcpyDtoH_v2"},
	fnMemcpyDtoD:           {name: "cuMemcpyDtoD_v2"},
	fnMemsetD8:             {name: "cuMemsetD8_v2"},
	fnStreamCreate:         {name: "cuStreamCreate"},
	fnStreamSynchronize:    {name: "cuStreamSynchronize"},
	fnStreamDestroy:        {name: "cuStreamDestroy_v2"},
	fnEventCreate:          {name: "cuEventCreate"},
	fnEventRecord:          {name: "cuEventRecord"},
	fnEventSynchronize:     {name: "cuEventSynchronize"},
	fnEventElapsedTime:     {name: "cuEventElapsedTime"},
	fnEventDestroy:         {name: "cuEventDestroy_v2"},
	fnModuleLoadData:       {name: "cuModuleLoadData"},
	fnModuleGetFunction:    {name: "cuModuleGetFunction"},
	fnModuleUnload:         {name: "cuModuleUnload"},
	fnFuncSetAttribute:     {name: "cuFuncSetAttribute"},
	fnLaunchKernel:         {name: "cuLaunchKernel"},
	fnLaunchKernelEx:       {name: "cuLaunchKernelEx", optional: true},       // CUDA >= 11.8
	fnTensorMapEncodeTiled: {name: "cuTensorMapEncodeTiled", optional: true}, // CUDA >= 12.0
}

// DriverSymbols returns the driver entry points LoadDriver resolves, in
// order; optional ones may be absent (calls needing them then fail with
// ErrNotSupported).
func DriverSymbols() (required, optional []string) {
	for _, s := range driverSymbols {
		if s.optional {
			optional = append(optional, s.name)
		} else {
			required = append(required, s.name)
		}
	}
	return required, optional
}

// Driver is the CUDA driver API (libcuda.so.1) loaded at run time. It is
// safe for concurrent use; calls that need a current context go through a
// Context, which owns the OS thread they run on.
//
// Upstream: the CUDA driver API (cuda.h); the loading design follows
// DeepGEMM's run-time use of the driver (csrc/jit) without its toolkit.
type Driver struct {
	lib     Library
	path    string
	fns     []uintptr
	version int // cuDriverGetVersion, e.g. 13000 for CUDA 13.0

	initOnce sync.Once
	initErr  error
}

// LoadDriver opens the CUDA driver through op (SystemOpener when op is nil),
// resolves its entry points and calls cuInit(0). Without a driver, with a
// driver lacking a required entry point, or when cuInit fails because no
// device or no usable driver is present, the error wraps ErrUnavailable and
// says why; it never crashes.
func LoadDriver(op Opener) (*Driver, error) {
	if op == nil {
		op = SystemOpener{}
	}
	lib, path, err := openFirst(op, "the CUDA driver", DriverLibraryNames())
	if err != nil {
		return nil, err
	}
	fns, err := resolve(lib, path, driverSymbols[:])
	if err != nil {
		lib.Close()
		return nil, err
	}
	d := &Driver{lib: lib, path: path, fns: fns}
	if err := d.init(); err != nil {
		lib.Close()
		return nil, err
	}
	return d, nil
}

var (
	sysDriverOnce sync.Once
	sysDriver     *Driver
	sysDriverErr  error
)

// SystemDriver returns the process's CUDA driver, loading it once with
// SystemOpener; later calls return the same driver or the same error.
func SystemDriver() (*Driver, error) {
	sysDriverOnce.Do(func() { sysDriver, sysDriverErr = LoadDriver(SystemOpener{}) })
	return sysDriver, sysDriverErr
}

func (d *Driver) init() error {
	d.initOnce.Do(func() {
		if err := d.call(fnInit, 0); err != nil {
			d.initErr = fmt.Errorf("%w: %v", ErrUnavailable, err)
			return
		}
		var v int32
		if err := d.call(fnDriverGetVersion, uintptr(unsafe.Pointer(&v))); err != nil {
			d.initErr = err
			return
		}
		d.version = int(v)
	})
	return d.initErr
}

// Path returns the library file name the driver was loaded from.
func (d *Driver) Path() string { return d.path }

// Version returns the CUDA version the driver supports, as cuDriverGetVersion
// reports it (1000*major + 10*minor, e.g. 13000 for 13.0).
func (d *Driver) Version() int { return d.version }

// Close releases the library. Contexts opened from d must be closed first.
func (d *Driver) Close() error { return d.lib.Close() }

// Has reports whether the driver exports the named entry point (one of
// DriverSymbols).
func (d *Driver) Has(name string) bool {
	for i, s := range driverSymbols {
		if s.name == name {
			return d.fns[i] != 0
		}
	}
	return false
}

// call invokes entry point id and turns a non-zero CUresult into an *Error
// carrying the driver's name and message for it.
//
//go:uintptrescapes
func (d *Driver) call(id int, args ...uintptr) error {
	fn := d.fns[id]
	if fn == 0 {
		return fmt.Errorf("%w: %s is not exported by %s", ErrNotSupported, driverSymbols[id].name, d.path)
	}
	if code := ccall(fn, args...); code != cudaSuccess {
		return d.statusError(driverSymbols[id].name, int(code))
	}
	return nil
}

// statusError builds the *Error for status code from function name, asking
// the driver for the code's name and message.
func (d *Driver) statusError(name string, code int) error {
	e := &Error{Func: name, Code: code}
	var p unsafe.Pointer
	if ccall(d.fns[fnGetErrorName], uintptr(code), uintptr(unsafe.Pointer(&p))) == cudaSuccess && p != nil {
		e.Name = goString(p)
	}
	p = nil
	if ccall(d.fns[fnGetErrorString], uintptr(code), uintptr(unsafe.Pointer(&p))) == cudaSuccess && p != nil {
		e.Message = goString(p)
	}
	if e.Name == "" {
		e.Name = fmt.Sprintf("CUresult %d", code)
	}
	return e
}

// goString copies the NUL-terminated C string at p (at most 64 KiB).
func goString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for n < 1<<16 && *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}

// cstr returns s as a NUL-terminated byte slice for C.
func cstr(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// Device attributes (CUdevice_attribute) that DeviceInfo reads.
const (
	attrMaxThreadsPerBlock = 1
	attrMultiprocessors    = 16
	attrL2CacheSize        = 38
	attrCCMajor            = 75
	attrCCMinor            = 76
	attrSharedOptin        = 97
)

// DeviceInfo describes one CUDA device as the driver reports it.
type DeviceInfo struct {
	Ordinal        int    // CUDA device ordinal
	Name           string // e.g. "NVIDIA H200"
	Major, Minor   int    // compute capability, 9.0 on Hopper
	SMs            int    // streaming multiprocessors (132 on an H200 SXM)
	SharedMemOptin int    // bytes of shared memory a block may opt in to (232448 on Hopper)
	L2Bytes        int    // L2 cache size in bytes
	TotalMem       uint64 // device memory in bytes
	MaxThreads     int    // threads per block
	DriverVersion  int    // cuDriverGetVersion
	DriverLibrary  string // the libcuda file loaded
}

// Arch returns the NVRTC architecture for the device ("sm_90a" on Hopper).
func (i DeviceInfo) Arch() string { return GPU{Major: i.Major, Minor: i.Minor}.Arch() }

// DeviceCount returns the number of CUDA devices (cuDeviceGetCount).
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	if err := d.call(fnDeviceGetCount, uintptr(unsafe.Pointer(&n))); err != nil {
		return 0, err
	}
	return int(n), nil
}

// device returns the CUdevice handle for ordinal and its description.
func (d *Driver) device(ordinal int) (int32, DeviceInfo, error) {
	n, err := d.DeviceCount()
	if err != nil {
		return 0, DeviceInfo{}, err
	}
	if n == 0 {
		return 0, DeviceInfo{}, fmt.Errorf("%w: the CUDA driver sees no device", ErrUnavailable)
	}
	if ordinal < 0 || ordinal >= n {
		return 0, DeviceInfo{}, fmt.Errorf("%w: ordinal %d out of range [0,%d)", ErrInvalid, ordinal, n)
	}
	var dev int32
	if err := d.call(fnDeviceGet, uintptr(unsafe.Pointer(&dev)), uintptr(ordinal)); err != nil {
		return 0, DeviceInfo{}, err
	}
	info := DeviceInfo{Ordinal: ordinal, DriverVersion: d.version, DriverLibrary: d.path}
	name := make([]byte, 256)
	if err := d.call(fnDeviceGetName, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(dev)); err != nil {
		return 0, DeviceInfo{}, err
	}
	info.Name = goString(unsafe.Pointer(&name[0]))
	var total uint64
	if err := d.call(fnDeviceTotalMem, uintptr(unsafe.Pointer(&total)), uintptr(dev)); err != nil {
		return 0, DeviceInfo{}, err
	}
	info.TotalMem = total
	for _, a := range []struct {
		attr int
		dst  *int
	}{
		{attrCCMajor, &info.Major}, {attrCCMinor, &info.Minor}, {attrMultiprocessors, &info.SMs},
		{attrSharedOptin, &info.SharedMemOptin}, {attrL2CacheSize, &info.L2Bytes},
		{attrMaxThreadsPerBlock, &info.MaxThreads},
	} {
		var v int32
		if err := d.call(fnDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(a.attr), uintptr(dev)); err != nil {
			return 0, DeviceInfo{}, err
		}
		*a.dst = int(v)
	}
	return dev, info, nil
}
