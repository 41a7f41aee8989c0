//go:build linux || darwin || freebsd || netbsd

package cudatest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/fireflyer-go/fireflyer/cuda"
)

// CUDA and NVRTC status codes the fake returns.
const (
	Success           = 0
	ErrInvalidValue   = 1
	ErrOutOfMemory    = 2
	ErrNoDevice       = 100
	ErrInvalidImage   = 200
	ErrInvalidHandle  = 400
	ErrNotFound       = 500
	ErrLaunchFailed   = 719
	NVRTCCompileError = 6
)

// ImageMagic starts every image the fake NVRTC produces; the fake
// cuModuleLoadData rejects anything else with CUDA_ERROR_INVALID_IMAGE.
const ImageMagic = "FAKECUBIN\n"

var errorNames = map[int32][2]string{
	Success:          {"CUDA_SUCCESS", "no error"},
	ErrInvalidValue:  {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	ErrOutOfMemory:   {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	ErrNoDevice:      {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	ErrInvalidImage:  {"CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	ErrInvalidHandle: {"CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	ErrNotFound:      {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	ErrLaunchFailed:  {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
}

var nvrtcNames = map[int32]string{
	0:                 "NVRTC_SUCCESS",
	NVRTCCompileError: "NVRTC_ERROR_COMPILATION",
	7:                 "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
}

// Launch records one kernel launch as the fake driver saw it.
type Launch struct {
	Kernel    string // function name given to cuModuleGetFunction
	Grid      [3]uint32
	Block     [3]uint32
	Cluster   [3]uint32 // {1,1,1} unless launched with a cluster attribute
	SharedMem uint32
	Ex        bool     // through cuLaunchKernelEx
	Args      [][]byte // each parameter's bytes, read through the kernelParams pointers
}

// Kernel simulates a device function: it gets the launch (arguments already
// read) and the fake device memory.
type Kernel struct {
	ArgSizes []int // byte size of each parameter, in order
	Run      func(l *Launch, mem *Memory) error
}

// Memory is the fake device memory.
type Memory struct {
	mu     sync.Mutex
	next   uint64
	allocs map[uint64][]byte
}

// Bytes returns the n bytes at device address p, which must lie inside one
// allocation.
func (m *Memory) Bytes(p uint64, n int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytesLocked(p, n)
}

func (m *Memory) bytesLocked(p uint64, n int) ([]byte, error) {
	for base, b := range m.allocs {
		if p >= base && p+uint64(n) <= base+uint64(len(b)) {
			off := p - base
			return b[off : off+uint64(n)], nil
		}
	}
	return nil, fmt.Errorf("fake device address %#x (+%d bytes) is not allocated", p, n)
}

// Live returns the number of allocations not freed.
func (m *Memory) Live() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.allocs)
}

// Fake is a simulated CUDA driver and NVRTC. Set its fields before loading.
type Fake struct {
	// Devices lists the fake GPUs (default: one H200).
	Devices []cuda.DeviceInfo
	// InitStatus is what cuInit returns (default 0; ErrNoDevice to simulate
	// a machine with a driver but no GPU).
	InitStatus int32
	// MemLimit is the device memory in bytes (default 1 GiB); allocations
	// beyond it fail with CUDA_ERROR_OUT_OF_MEMORY.
	MemLimit uint64
	// Missing names entry points the fake library does not export.
	Missing map[string]bool
	// NVRTCVersion is what nvrtcVersion reports (default 13.0).
	NVRTCVersion [2]int32
	// Kernels maps function names to simulations.
	Kernels map[string]Kernel

	Mem Memory

	mu        sync.Mutex
	threads   map[int]int // OS thread id -> calls that need a context
	launches  []Launch
	compiles  []string // options of each nvrtcCompileProgram, joined
	handles   uint64
	modules   map[uint64]bool
	functions map[uint64]string
	programs  map[uint64]*program
	used      uint64
	ctxRefs   int
	calls     map[string]int
	tensorMap []uint64
}

type program struct {
	src, name string
	exprs     []string
	log       string
	image     []byte
}

// New returns a Fake with one H200 and makes it the active fake.
func New() *Fake {
	f := &Fake{
		Devices: []cuda.DeviceInfo{{
			Name: "NVIDIA H200", Major: 9, Minor: 0, SMs: 132, SharedMemOptin: 232448,
			L2Bytes: 60 << 20, TotalMem: 143771 << 20, MaxThreads: 1024,
		}},
		MemLimit:     1 << 30,
		NVRTCVersion: [2]int32{13, 0},
		Missing:      map[string]bool{},
		Kernels:      map[string]Kernel{},
		threads:      map[int]int{},
		modules:      map[uint64]bool{},
		functions:    map[uint64]string{},
		programs:     map[uint64]*program{},
		calls:        map[string]int{},
	}
	f.Mem.next = 0x7f0000000000
	f.Mem.allocs = map[uint64][]byte{}
	active.Store(f)
	return f
}

var active atomic.Pointer[Fake]

// Opener returns an Opener that loads the fake as "libcuda.so.1" and as
// every NVRTC name ("libnvrtc.so.13", ...); other names fail as dlopen does.
func (f *Fake) Opener() cuda.Opener { return opener{f: f} }

type opener struct{ f *Fake }

// Open implements cuda.Opener for the fake libraries.
func (o opener) Open(name string) (cuda.Library, error) {
	base := name[strings.LastIndex(name, "/")+1:]
	switch {
	case base == "libcuda.so.1", strings.HasPrefix(base, "libnvrtc.so"):
		return lib(o), nil
	}
	return nil, fmt.Errorf("%s: cannot open shared object file: No such file or directory", name)
}

type lib struct{ f *Fake }

// Sym implements cuda.Library: the address of a fake entry point.
func (l lib) Sym(name string) (uintptr, error) {
	if l.f.Missing[name] {
		return 0, fmt.Errorf("undefined symbol: %s", name)
	}
	p, ok := callbacks()[name]
	if !ok {
		return 0, fmt.Errorf("undefined symbol: %s", name)
	}
	return p, nil
}

// Close implements cuda.Library; the fake holds nothing.
func (lib) Close() error { return nil }

// Threads returns how many context-bound calls ran on each OS thread.
func (f *Fake) Threads() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]int{}
	for k, v := range f.threads {
		out[k] = v
	}
	return out
}

// Launches returns the launches seen so far.
func (f *Fake) Launches() []Launch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Launch(nil), f.launches...)
}

// Compiles returns the option lists of the compilations seen so far.
func (f *Fake) Compiles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.compiles...)
}

// Calls returns how often each entry point was called.
func (f *Fake) Calls(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// PrimaryContextRefs returns the primary-context retain count.
func (f *Fake) PrimaryContextRefs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctxRefs
}

// TensorMapArgs returns the integer arguments of the last
// cuTensorMapEncodeTiled: data type, rank, base, then dims, strides, box,
// element strides, interleave, swizzle, L2 promotion, OOB fill.
func (f *Fake) TensorMapArgs() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.tensorMap...)
}

func (f *Fake) newHandle() uint64 {
	f.handles++
	return 0x1000 + f.handles*16
}

// bound records a call that needs a current context.
func (f *Fake) bound(name string) {
	f.threads[threadID()]++
	f.calls[name]++
}

// cstrings are NUL-terminated strings kept alive for the process, handed out
// by cuGetErrorName and friends.
var (
	cstrMu sync.Mutex
	cstrs  = map[string][]byte{}
)

func cstrPtr(s string) unsafe.Pointer {
	cstrMu.Lock()
	defer cstrMu.Unlock()
	b, ok := cstrs[s]
	if !ok {
		b = append([]byte(s), 0)
		cstrs[s] = b
	}
	return unsafe.Pointer(&b[0])
}

func goStr(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}

func put32(p unsafe.Pointer, v int32)  { *(*int32)(p) = v }
func put64(p unsafe.Pointer, v uint64) { *(*uint64)(p) = v }

var (
	cbOnce sync.Once
	cbs    map[string]uintptr
)

// callbacks creates the C-callable entry points once per process.
func callbacks() map[string]uintptr {
	cbOnce.Do(func() {
		cbs = map[string]uintptr{}
		for name, fn := range entryPoints() {
			cbs[name] = purego.NewCallback(fn)
		}
	})
	return cbs
}

// Symbols returns the entry points the fake exports, sorted.
func Symbols() []string {
	var out []string
	for n := range entryPoints() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// with runs fn on the active fake under its lock.
func with(fn func(f *Fake) int32) int32 {
	f := active.Load()
	if f == nil {
		return 999
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(f)
}

func (f *Fake) device(dev int32) (cuda.DeviceInfo, bool) {
	if dev < 0 || int(dev) >= len(f.Devices) {
		return cuda.DeviceInfo{}, false
	}
	return f.Devices[dev], true
}

func entryPoints() map[string]any {
	return map[string]any{
		"cuInit": func(flags uint32) int32 {
			return with(func(f *Fake) int32 { f.calls["cuInit"]++; return f.InitStatus })
		},
		"cuDriverGetVersion": func(p unsafe.Pointer) int32 { put32(p, 13000); return 0 },
		"cuDeviceGetCount": func(p unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 { put32(p, int32(len(f.Devices))); return 0 })
		},
		"cuDeviceGet": func(p unsafe.Pointer, ordinal int32) int32 {
			return with(func(f *Fake) int32 {
				if _, ok := f.device(ordinal); !ok {
					return ErrInvalidValue
				}
				put32(p, ordinal)
				return 0
			})
		},
		"cuDeviceGetAttribute": func(p unsafe.Pointer, attr, dev int32) int32 {
			return with(func(f *Fake) int32 {
				d, ok := f.device(dev)
				if !ok {
					return ErrInvalidValue
				}
				v := map[int32]int{1: d.MaxThreads, 16: d.SMs, 38: d.L2Bytes, 75: d.Major, 76: d.Minor, 97: d.SharedMemOptin}
				x, ok := v[attr]
				if !ok {
					return ErrInvalidValue
				}
				put32(p, int32(x))
				return 0
			})
		},
		"cuDeviceGetName": func(p unsafe.Pointer, n, dev int32) int32 {
			return with(func(f *Fake) int32 {
				d, ok := f.device(dev)
				if !ok || n <= 0 {
					return ErrInvalidValue
				}
				dst := unsafe.Slice((*byte)(p), n)
				m := copy(dst[:n-1], d.Name)
				dst[m] = 0
				return 0
			})
		},
		"cuDeviceTotalMem_v2": func(p unsafe.Pointer, dev int32) int32 {
			return with(func(f *Fake) int32 {
				d, ok := f.device(dev)
				if !ok {
					return ErrInvalidValue
				}
				put64(p, d.TotalMem)
				return 0
			})
		},
		"cuGetErrorName": func(code int32, pp unsafe.Pointer) int32 {
			n, ok := errorNames[code]
			if !ok {
				return ErrInvalidValue
			}
			*(*unsafe.Pointer)(pp) = cstrPtr(n[0])
			return 0
		},
		"cuGetErrorString": func(code int32, pp unsafe.Pointer) int32 {
			n, ok := errorNames[code]
			if !ok {
				return ErrInvalidValue
			}
			*(*unsafe.Pointer)(pp) = cstrPtr(n[1])
			return 0
		},
		"cuDevicePrimaryCtxRetain": func(p unsafe.Pointer, dev int32) int32 {
			return with(func(f *Fake) int32 {
				if _, ok := f.device(dev); !ok {
					return ErrInvalidValue
				}
				f.ctxRefs++
				put64(p, 0xC0C0+uint64(dev))
				return 0
			})
		},
		"cuDevicePrimaryCtxRelease_v2": func(dev int32) int32 {
			return with(func(f *Fake) int32 { f.ctxRefs--; return 0 })
		},
		"cuCtxSetCurrent": func(ctx uintptr) int32 {
			return with(func(f *Fake) int32 { f.bound("cuCtxSetCurrent"); return 0 })
		},
		"cuCtxSynchronize": func() int32 {
			return with(func(f *Fake) int32 { f.bound("cuCtxSynchronize"); return 0 })
		},
		"cuMemAlloc_v2": func(p unsafe.Pointer, size uintptr) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemAlloc_v2")
				if size == 0 {
					return ErrInvalidValue
				}
				if f.used+uint64(size) > f.MemLimit {
					return ErrOutOfMemory
				}
				f.Mem.mu.Lock()
				defer f.Mem.mu.Unlock()
				addr := f.Mem.next
				f.Mem.next += (uint64(size) + 511) &^ 255
				f.Mem.allocs[addr] = make([]byte, size)
				f.used += uint64(size)
				put64(p, addr)
				return 0
			})
		},
		"cuMemFree_v2": func(ptr uint64) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemFree_v2")
				f.Mem.mu.Lock()
				defer f.Mem.mu.Unlock()
				b, ok := f.Mem.allocs[ptr]
				if !ok {
					return ErrInvalidValue
				}
				f.used -= uint64(len(b))
				delete(f.Mem.allocs, ptr)
				return 0
			})
		},
		"cuMemGetInfo_v2": func(free, total unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemGetInfo_v2")
				put64(free, f.MemLimit-f.used)
				put64(total, f.MemLimit)
				return 0
			})
		},
		"cuMemcpyHtoD_v2": func(dst uint64, src unsafe.Pointer, n uintptr) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemcpyHtoD_v2")
				b, err := f.Mem.Bytes(dst, int(n))
				if err != nil {
					return ErrInvalidValue
				}
				copy(b, unsafe.Slice((*byte)(src), n))
				return 0
			})
		},
		"cuMemcpyDtoH_v2": func(dst unsafe.Pointer, src uint64, n uintptr) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemcpyDtoH_v2")
				b, err := f.Mem.Bytes(src, int(n))
				if err != nil {
					return ErrInvalidValue
				}
				copy(unsafe.Slice((*byte)(dst), n), b)
				return 0
			})
		},
		"cuMemcpyDtoD_v2": func(dst, src uint64, n uintptr) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemcpyDtoD_v2")
				d, err1 := f.Mem.Bytes(dst, int(n))
				s, err2 := f.Mem.Bytes(src, int(n))
				if err1 != nil || err2 != nil {
					return ErrInvalidValue
				}
				copy(d, s)
				return 0
			})
		},
		"cuMemsetD8_v2": func(dst uint64, v uint8, n uintptr) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuMemsetD8_v2")
				d, err := f.Mem.Bytes(dst, int(n))
				if err != nil {
					return ErrInvalidValue
				}
				for i := range d {
					d[i] = v
				}
				return 0
			})
		},
		"cuStreamCreate": func(p unsafe.Pointer, flags uint32) int32 {
			return with(func(f *Fake) int32 { f.bound("cuStreamCreate"); put64(p, f.newHandle()); return 0 })
		},
		"cuStreamSynchronize": func(s uintptr) int32 {
			return with(func(f *Fake) int32 { f.bound("cuStreamSynchronize"); return 0 })
		},
		"cuStreamDestroy_v2": func(s uintptr) int32 {
			return with(func(f *Fake) int32 { f.bound("cuStreamDestroy_v2"); return 0 })
		},
		"cuEventCreate": func(p unsafe.Pointer, flags uint32) int32 {
			return with(func(f *Fake) int32 { f.bound("cuEventCreate"); put64(p, f.newHandle()); return 0 })
		},
		"cuEventRecord": func(e, s uintptr) int32 {
			return with(func(f *Fake) int32 { f.bound("cuEventRecord"); return 0 })
		},
		"cuEventSynchronize": func(e uintptr) int32 {
			return with(func(f *Fake) int32 { f.bound("cuEventSynchronize"); return 0 })
		},
		"cuEventElapsedTime": func(ms unsafe.Pointer, start, end uintptr) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuEventElapsedTime")
				*(*float32)(ms) = 1.5
				return 0
			})
		},
		"cuEventDestroy_v2": func(e uintptr) int32 {
			return with(func(f *Fake) int32 { f.bound("cuEventDestroy_v2"); return 0 })
		},
		"cuModuleLoadData": func(p, image unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuModuleLoadData")
				if !bytes.Equal(unsafe.Slice((*byte)(image), len(ImageMagic)), []byte(ImageMagic)) {
					return ErrInvalidImage
				}
				h := f.newHandle()
				f.modules[h] = true
				put64(p, h)
				return 0
			})
		},
		"cuModuleGetFunction": func(p unsafe.Pointer, mod uint64, name unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuModuleGetFunction")
				if !f.modules[mod] {
					return ErrInvalidHandle
				}
				n := goStr(name)
				if _, ok := f.Kernels[n]; !ok {
					return ErrNotFound
				}
				h := f.newHandle()
				f.functions[h] = n
				put64(p, h)
				return 0
			})
		},
		"cuModuleUnload": func(mod uint64) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuModuleUnload")
				if !f.modules[mod] {
					return ErrInvalidHandle
				}
				delete(f.modules, mod)
				return 0
			})
		},
		"cuFuncSetAttribute": func(fn uint64, attr, v int32) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuFuncSetAttribute")
				if _, ok := f.functions[fn]; !ok {
					return ErrInvalidHandle
				}
				if attr == 8 && v > 232448 {
					return ErrInvalidValue
				}
				return 0
			})
		},
		"cuLaunchKernel": func(fn uint64, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params, extra unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuLaunchKernel")
				l := Launch{Grid: [3]uint32{gx, gy, gz}, Block: [3]uint32{bx, by, bz}, Cluster: [3]uint32{1, 1, 1}, SharedMem: shmem}
				return f.launch(fn, &l, params)
			})
		},
		"cuLaunchKernelEx": func(cfg unsafe.Pointer, fn uint64, params, extra unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				f.bound("cuLaunchKernelEx")
				c := unsafe.Slice((*byte)(cfg), 56)
				u := func(off int) uint32 { return binary.LittleEndian.Uint32(c[off:]) }
				l := Launch{Grid: [3]uint32{u(0), u(4), u(8)}, Block: [3]uint32{u(12), u(16), u(20)},
					Cluster: [3]uint32{1, 1, 1}, SharedMem: u(24), Ex: true}
				attrs := *(*unsafe.Pointer)(unsafe.Pointer(&c[40]))
				for i := 0; i < int(u(48)); i++ {
					a := unsafe.Slice((*byte)(unsafe.Add(attrs, 72*i)), 72)
					if binary.LittleEndian.Uint32(a) == 4 {
						l.Cluster = [3]uint32{binary.LittleEndian.Uint32(a[8:]), binary.LittleEndian.Uint32(a[12:]), binary.LittleEndian.Uint32(a[16:])}
					}
				}
				for i := range 3 {
					if l.Grid[i]%l.Cluster[i] != 0 {
						return ErrInvalidValue
					}
				}
				return f.launch(fn, &l, params)
			})
		},
		"cuTensorMapEncodeTiled": func(tm unsafe.Pointer, dt, rank uint32, base uint64, dims, strides, box, elem unsafe.Pointer, interleave, swizzle, l2, oob uint32) int32 {
			return with(func(f *Fake) int32 {
				f.calls["cuTensorMapEncodeTiled"]++
				if uintptr(tm)%64 != 0 || rank == 0 || rank > 5 {
					return ErrInvalidValue
				}
				args := []uint64{uint64(dt), uint64(rank), base}
				for i := range int(rank) {
					args = append(args, *(*uint64)(unsafe.Add(dims, 8*i)))
				}
				for i := range int(rank) - 1 {
					args = append(args, *(*uint64)(unsafe.Add(strides, 8*i)))
				}
				for i := range int(rank) {
					args = append(args, uint64(*(*uint32)(unsafe.Add(box, 4*i))))
				}
				for i := range int(rank) {
					args = append(args, uint64(*(*uint32)(unsafe.Add(elem, 4*i))))
				}
				args = append(args, uint64(interleave), uint64(swizzle), uint64(l2), uint64(oob))
				f.tensorMap = args
				out := unsafe.Slice((*byte)(tm), 128)
				for i := range out {
					out[i] = byte(i)
				}
				binary.LittleEndian.PutUint64(out, base)
				return 0
			})
		},

		"nvrtcVersion": func(maj, min unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 { put32(maj, f.NVRTCVersion[0]); put32(min, f.NVRTCVersion[1]); return 0 })
		},
		"nvrtcGetErrorString": func(code int32) unsafe.Pointer {
			n, ok := nvrtcNames[code]
			if !ok {
				n = "NVRTC_ERROR unknown"
			}
			return cstrPtr(n)
		},
		"nvrtcCreateProgram": func(p, src, name unsafe.Pointer, n int32, headers, includes unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				h := f.newHandle()
				f.programs[h] = &program{src: goStr(src), name: goStr(name)}
				put64(p, h)
				return 0
			})
		},
		"nvrtcDestroyProgram": func(p unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				delete(f.programs, *(*uint64)(p))
				put64(p, 0)
				return 0
			})
		},
		"nvrtcAddNameExpression": func(prog uint64, name unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				p, ok := f.programs[prog]
				if !ok {
					return 5 // NVRTC_ERROR_INVALID_PROGRAM
				}
				p.exprs = append(p.exprs, goStr(name))
				return 0
			})
		},
		"nvrtcCompileProgram": func(prog uint64, n int32, opts unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				p, ok := f.programs[prog]
				if !ok {
					return 5
				}
				var o []string
				for i := range int(n) {
					o = append(o, goStr(*(*unsafe.Pointer)(unsafe.Add(opts, 8*i))))
				}
				f.compiles = append(f.compiles, strings.Join(o, " "))
				if i := strings.Index(p.src, "#error"); i >= 0 {
					line := strings.SplitN(p.src[i:], "\n", 2)[0]
					p.log = fmt.Sprintf("%s(1): error: %s\n\n1 error detected in the compilation of %q.", p.name, line, p.name)
					return NVRTCCompileError
				}
				p.image = []byte(ImageMagic + strings.Join(o, " ") + "\n" + p.src)
				p.log = ""
				return 0
			})
		},
		"nvrtcGetProgramLogSize": func(prog uint64, size unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 { put64(size, uint64(len(f.programs[prog].log)+1)); return 0 })
		},
		"nvrtcGetProgramLog": func(prog uint64, dst unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				l := f.programs[prog].log
				d := unsafe.Slice((*byte)(dst), len(l)+1)
				copy(d, l)
				d[len(l)] = 0
				return 0
			})
		},
		"nvrtcGetCUBINSize": func(prog uint64, size unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 { put64(size, uint64(len(f.programs[prog].image))); return 0 })
		},
		"nvrtcGetCUBIN": func(prog uint64, dst unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				img := f.programs[prog].image
				copy(unsafe.Slice((*byte)(dst), len(img)), img)
				return 0
			})
		},
		"nvrtcGetPTXSize": func(prog uint64, size unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 { put64(size, uint64(len(f.programs[prog].image)+1)); return 0 })
		},
		"nvrtcGetPTX": func(prog uint64, dst unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				img := f.programs[prog].image
				d := unsafe.Slice((*byte)(dst), len(img)+1)
				copy(d, img)
				d[len(img)] = 0
				return 0
			})
		},
		"nvrtcGetLoweredName": func(prog uint64, expr, out unsafe.Pointer) int32 {
			return with(func(f *Fake) int32 {
				e := goStr(expr)
				p, ok := f.programs[prog]
				if !ok {
					return 5
				}
				for _, x := range p.exprs {
					if x == e {
						*(*unsafe.Pointer)(out) = cstrPtr(LoweredName(e))
						return 0
					}
				}
				return 10 // NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID
			})
		},
	}
}

// LoweredName is the fake NVRTC's "mangling" of a name expression: the
// kernel name with "_fake_" and the template arguments, spaces removed.
func LoweredName(expr string) string {
	return "_fake_" + strings.NewReplacer(" ", "", "<", "_", ">", "", ",", "_").Replace(expr)
}

func (f *Fake) launch(fn uint64, l *Launch, params unsafe.Pointer) int32 {
	name, ok := f.functions[fn]
	if !ok {
		return ErrInvalidHandle
	}
	l.Kernel = name
	k := f.Kernels[name]
	for i, size := range k.ArgSizes {
		p := *(*unsafe.Pointer)(unsafe.Add(params, 8*i))
		l.Args = append(l.Args, append([]byte(nil), unsafe.Slice((*byte)(p), size)...))
	}
	f.launches = append(f.launches, *l)
	if k.Run != nil {
		if err := k.Run(l, &f.Mem); err != nil {
			return ErrLaunchFailed
		}
	}
	return 0
}

// ArgPtr, ArgI32 and ArgF32 decode a launch argument's bytes.
func ArgPtr(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// ArgI32 decodes a C int argument.
func ArgI32(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }

// ArgF32 decodes a C float argument.
func ArgF32(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

// ErrFake is returned by simulated kernels to make a launch fail.
var ErrFake = errors.New("cudatest: simulated kernel failure")
