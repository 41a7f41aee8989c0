package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Dim3 is a grid, block or cluster shape. A zero component counts as 1.
type Dim3 struct{ X, Y, Z uint32 }

func (d Dim3) norm() Dim3 {
	if d.X == 0 {
		d.X = 1
	}
	if d.Y == 0 {
		d.Y = 1
	}
	if d.Z == 0 {
		d.Z = 1
	}
	return d
}

// LaunchConfig is the shape of a kernel launch.
type LaunchConfig struct {
	Grid        Dim3    // blocks in the grid
	Block       Dim3    // threads per block
	Cluster     Dim3    // blocks per cluster (Hopper); zero: no cluster
	SharedMem   int     // dynamic shared memory bytes per block
	Stream      *Stream // nil: the legacy default stream
	Cooperative bool    // grid-wide synchronisation allowed
}

// Launch attribute ids and sizes (cuda.h, CUlaunchAttributeID,
// CUlaunchAttribute, CUlaunchConfig on 64-bit hosts).
const (
	launchAttrCooperative = 2
	launchAttrClusterDim  = 4
	launchAttrSize        = 72 // id (4) + pad (4) + value union (64)
	launchConfigSize      = 56 // 7 uint32, pad, stream, attrs pointer, numAttrs, pad
)

// usesEx reports whether the launch needs cuLaunchKernelEx.
func (cfg LaunchConfig) usesEx() bool {
	c := cfg.Cluster.norm()
	return cfg.Cooperative || c.X*c.Y*c.Z > 1
}

// encodeLaunchEx lays out the CUlaunchConfig and its attributes for
// cuLaunchKernelEx in memory the caller keeps alive: cfgBuf is the config,
// attrBuf the attribute array it points to.
func encodeLaunchEx(cfg LaunchConfig, stream uintptr) (cfgBuf, attrBuf []byte) {
	g, b, c := cfg.Grid.norm(), cfg.Block.norm(), cfg.Cluster.norm()
	attrBuf = make([]byte, 2*launchAttrSize)
	n := 0
	if c.X*c.Y*c.Z > 1 {
		a := attrBuf[n*launchAttrSize:]
		binary.LittleEndian.PutUint32(a[0:], launchAttrClusterDim)
		binary.LittleEndian.PutUint32(a[8:], c.X)
		binary.LittleEndian.PutUint32(a[12:], c.Y)
		binary.LittleEndian.PutUint32(a[16:], c.Z)
		n++
	}
	if cfg.Cooperative {
		a := attrBuf[n*launchAttrSize:]
		binary.LittleEndian.PutUint32(a[0:], launchAttrCooperative)
		binary.LittleEndian.PutUint32(a[8:], 1)
		n++
	}
	cfgBuf = make([]byte, launchConfigSize)
	for i, v := range []uint32{g.X, g.Y, g.Z, b.X, b.Y, b.Z, uint32(cfg.SharedMem)} {
		binary.LittleEndian.PutUint32(cfgBuf[4*i:], v)
	}
	binary.LittleEndian.PutUint64(cfgBuf[32:], uint64(stream))
	binary.LittleEndian.PutUint64(cfgBuf[40:], uint64(uintptr(unsafe.Pointer(&attrBuf[0]))))
	binary.LittleEndian.PutUint32(cfgBuf[48:], uint32(n))
	return cfgBuf, attrBuf
}

func (cfg LaunchConfig) validate() error {
	b := cfg.Block.norm()
	switch {
	case cfg.Grid.X == 0 && cfg.Grid.Y == 0 && cfg.Grid.Z == 0:
		return fmt.Errorf("%w: LaunchConfig.Grid is empty", ErrInvalid)
	case b.X*b.Y*b.Z > 1024:
		return fmt.Errorf("%w: LaunchConfig.Block %dx%dx%d has more than 1024 threads", ErrInvalid, b.X, b.Y, b.Z)
	case cfg.SharedMem < 0:
		return fmt.Errorf("%w: LaunchConfig.SharedMem %d", ErrInvalid, cfg.SharedMem)
	}
	c := cfg.Cluster.norm()
	g := cfg.Grid.norm()
	if g.X%c.X != 0 || g.Y%c.Y != 0 || g.Z%c.Z != 0 {
		return fmt.Errorf("%w: LaunchConfig.Grid %v is not a multiple of Cluster %v", ErrInvalid, g, c)
	}
	return nil
}

// Launch runs kernel f with the packed arguments (cuLaunchKernel, or
// cuLaunchKernelEx when a cluster or cooperative launch is asked for). The
// launch is asynchronous; its own status and any earlier asynchronous error
// are returned.
func (c *Context) Launch(f *Function, cfg LaunchConfig, args *Args) error {
	if f == nil {
		return fmt.Errorf("%w: Launch function is nil", ErrInvalid)
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if args == nil {
		args = &Args{}
	}
	buf, params := args.marshal()
	var pin runtime.Pinner
	defer pin.Unpin()
	var pp uintptr
	if len(params) > 0 {
		pin.Pin(&buf[0])
		pin.Pin(&params[0])
		pp = uintptr(unsafe.Pointer(&params[0]))
	}
	return c.Do(func() error {
		defer runtime.KeepAlive(buf)
		if cfg.usesEx() {
			cfgBuf, attrBuf := encodeLaunchEx(cfg, cfg.Stream.handle())
			err := c.drv.call(fnLaunchKernelEx, uintptr(unsafe.Pointer(&cfgBuf[0])), f.h, pp, 0)
			runtime.KeepAlive(attrBuf)
			return err
		}
		g, b := cfg.Grid.norm(), cfg.Block.norm()
		return c.drv.call(fnLaunchKernel, f.h, uintptr(g.X), uintptr(g.Y), uintptr(g.Z),
			uintptr(b.X), uintptr(b.Y), uintptr(b.Z), uintptr(cfg.SharedMem), cfg.Stream.handle(), pp, 0)
	})
}

// ArgKind is the C type of a packed kernel argument.
type ArgKind uint8

// Kernel argument kinds, named by their C types.
const (
	ArgPtr       ArgKind = iota // a device pointer (T*), 8 bytes
	ArgI32                      // int
	ArgU32                      // unsigned int
	ArgI64                      // long long
	ArgU64                      // unsigned long long
	ArgF32                      // float
	ArgF64                      // double
	ArgTensorMap                // CUtensorMap (128 bytes, 64-byte aligned), for __grid_constant__ parameters
)

var argKindNames = [...]string{"ptr", "i32", "u32", "i64", "u64", "f32", "f64", "tensormap"}

// String returns the kind's short name ("ptr", "i32", ..., "tensormap").
func (k ArgKind) String() string {
	if int(k) < len(argKindNames) {
		return argKindNames[k]
	}
	return fmt.Sprintf("ArgKind(%d)", int(k))
}

// Size returns the argument's size in bytes.
func (k ArgKind) Size() int {
	switch k {
	case ArgI32, ArgU32, ArgF32:
		return 4
	case ArgTensorMap:
		return 128
	}
	return 8
}

// Align returns the argument's alignment in bytes.
func (k ArgKind) Align() int {
	if k == ArgTensorMap {
		return 64
	}
	return k.Size()
}

// Args packs kernel arguments in declaration order. Each value is stored at
// its natural alignment in one byte buffer, and Launch passes the driver an
// array of pointers into it (the kernelParams form of cuLaunchKernel), so
// the buffer never holds Go pointers. The zero value is empty and ready.
type Args struct {
	buf   []byte
	offs  []int
	kinds []ArgKind
}

func (a *Args) put(k ArgKind, v uint64) *Args {
	off := alignUp(len(a.buf), k.Align())
	a.buf = append(a.buf, make([]byte, off+k.Size()-len(a.buf))...)
	if k.Size() == 4 {
		binary.LittleEndian.PutUint32(a.buf[off:], uint32(v))
	} else {
		binary.LittleEndian.PutUint64(a.buf[off:], v)
	}
	a.offs = append(a.offs, off)
	a.kinds = append(a.kinds, k)
	return a
}

// Ptr appends a device pointer.
func (a *Args) Ptr(p DevicePtr) *Args { return a.put(ArgPtr, uint64(p)) }

// I32 appends a C int.
func (a *Args) I32(v int32) *Args { return a.put(ArgI32, uint64(uint32(v))) }

// U32 appends a C unsigned int.
func (a *Args) U32(v uint32) *Args { return a.put(ArgU32, uint64(v)) }

// I64 appends a C long long.
func (a *Args) I64(v int64) *Args { return a.put(ArgI64, uint64(v)) }

// U64 appends a C unsigned long long.
func (a *Args) U64(v uint64) *Args { return a.put(ArgU64, v) }

// F32 appends a C float.
func (a *Args) F32(v float32) *Args { return a.put(ArgF32, uint64(math.Float32bits(v))) }

// F64 appends a C double.
func (a *Args) F64(v float64) *Args { return a.put(ArgF64, math.Float64bits(v)) }

// TensorMap appends a CUtensorMap by value (a __grid_constant__ parameter).
func (a *Args) TensorMap(m *TensorMap) *Args {
	a.put(ArgTensorMap, 0)
	copy(a.buf[a.offs[len(a.offs)-1]:], m[:])
	return a
}

// Len returns the number of arguments.
func (a *Args) Len() int { return len(a.kinds) }

// Kinds returns the argument kinds in order.
func (a *Args) Kinds() []ArgKind { return append([]ArgKind(nil), a.kinds...) }

// Layout returns each argument's byte offset in the packed buffer and the
// buffer itself (a copy); offsets respect each kind's Align.
func (a *Args) Layout() (offsets []int, packed []byte) {
	return append([]int(nil), a.offs...), append([]byte(nil), a.buf...)
}

// marshal copies the arguments into a 64-byte-aligned buffer and returns it
// with the kernelParams pointer array into it.
func (a *Args) marshal() ([]byte, []uintptr) {
	if len(a.kinds) == 0 {
		return nil, nil
	}
	raw := make([]byte, len(a.buf)+64)
	shift := alignUp(int(uintptr(unsafe.Pointer(&raw[0]))), 64) - int(uintptr(unsafe.Pointer(&raw[0])))
	buf := raw[shift : shift+len(a.buf)]
	copy(buf, a.buf)
	params := make([]uintptr, len(a.offs))
	for i, off := range a.offs {
		params[i] = uintptr(unsafe.Pointer(&buf[off]))
	}
	return buf, params
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }
