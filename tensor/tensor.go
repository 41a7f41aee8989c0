package tensor

import (
	"fmt"
	"math"
	"unsafe"
)

// maxBytes is the largest host allocation New attempts: the Go runtime's
// limit on 64-bit platforms (2^48 bytes; larger requests panic in make), and
// math.MaxInt on 32-bit ones.
const maxBytes = min(uint64(math.MaxInt), 1<<48)

// Tensor is a strided n-dimensional array of one dtype. Shape and Strides
// count elements (not bytes), outermost dimension first. Host storage is Data
// (little-endian raw bytes, at least as long as the largest offset reached).
// Tensor is the file- and wire-level form (safetensors, work files); the
// operands the compute packages take (FP8Matrix, gemm's and mla's) hold
// their elements in Storage, which device memory can implement.
//
// Tensor is deliberately small: packages define their own argument structs
// around it and use the typed views (F32, BF16s, E4M3s, ...) to reach the
// elements without copying.
type Tensor struct {
	DType   DType
	Shape   []int
	Strides []int
	Data    []byte
}

// New returns a zeroed, contiguous (row-major) host tensor. It returns
// ErrDType for an invalid dtype and ErrShape for a negative dimension or a
// size whose byte count overflows int or exceeds what the Go runtime can
// allocate (2^48 bytes on 64-bit platforms).
func New(dt DType, shape ...int) (*Tensor, error) {
	if dt.Size() == 0 {
		return nil, fmt.Errorf("%w: %v", ErrDType, dt)
	}
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	if uint64(n) > maxBytes/uint64(dt.Size()) {
		return nil, fmt.Errorf("%w: %v %v needs more than %d bytes", ErrShape, dt, shape, maxBytes)
	}
	return &Tensor{
		DType:   dt,
		Shape:   append([]int(nil), shape...),
		Strides: ContiguousStrides(shape),
		Data:    make([]byte, n*dt.Size()),
	}, nil
}

// NumElements returns the product of shape (1 for a scalar). It returns
// ErrShape for a negative dimension or an overflowing product.
func NumElements(shape []int) (int, error) {
	n := 1
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: dimension %d is %d", ErrShape, i, d)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("%w: %v overflows", ErrShape, shape)
		}
		n *= d
	}
	return n, nil
}

// ContiguousStrides returns the row-major strides (in elements) of shape.
func ContiguousStrides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// Len returns the number of elements.
func (t *Tensor) Len() int {
	n, _ := NumElements(t.Shape)
	return n
}

// IsContiguous reports whether the strides are row-major contiguous. A
// tensor with fewer or more strides than dims is not.
func (t *Tensor) IsContiguous() bool {
	if len(t.Strides) != len(t.Shape) {
		return false
	}
	acc := 1
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if t.Shape[i] != 1 && t.Strides[i] != acc {
			return false
		}
		acc *= t.Shape[i]
	}
	return true
}

// Check verifies that shape, strides and host storage agree: as many strides
// as dims, no negative dim or stride, and Data long enough for the furthest
// element. It returns ErrShape or ErrDType wrapped with the reason.
func (t *Tensor) Check() error {
	if t.DType.Size() == 0 {
		return fmt.Errorf("%w: %v", ErrDType, t.DType)
	}
	if len(t.Strides) != len(t.Shape) {
		return fmt.Errorf("%w: %d strides for %d dims", ErrShape, len(t.Strides), len(t.Shape))
	}
	n, err := NumElements(t.Shape)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	// The furthest element's offset (in elements), checked before each
	// product so that nothing wraps around.
	last := uint64(0)
	for i, d := range t.Shape {
		s := t.Strides[i]
		if s < 0 {
			return fmt.Errorf("%w: stride %d is negative", ErrShape, i)
		}
		if s != 0 && uint64(d-1) > (math.MaxInt-last)/uint64(s) {
			return fmt.Errorf("%w: strides %v over shape %v reach past math.MaxInt elements", ErrShape, t.Strides, t.Shape)
		}
		last += uint64(d-1) * uint64(s)
	}
	size := uint64(t.DType.Size())
	if last >= math.MaxInt/size {
		return fmt.Errorf("%w: strides %v over shape %v reach past math.MaxInt bytes", ErrShape, t.Strides, t.Shape)
	}
	if need := (last + 1) * size; uint64(len(t.Data)) < need {
		return fmt.Errorf("%w: %d bytes of storage, %v %v needs %d", ErrShape, len(t.Data), t.DType, t.Shape, need)
	}
	return nil
}

// view reinterprets the host bytes as a slice of T after checking the dtype.
func view[T any](t *Tensor, want DType) []T {
	if t.DType != want {
		panic(fmt.Sprintf("tensor: %v view of a %v tensor", want, t.DType))
	}
	var z T
	sz := int(unsafe.Sizeof(z))
	if len(t.Data) < sz {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(t.Data))), len(t.Data)/sz)
}

// F32 returns the host storage as []float32 (no copy). It panics if the
// dtype is not F32: a programming error, not bad input.
func (t *Tensor) F32() []float32 { return view[float32](t, F32) }

// BF16s returns the host storage as []BF16 (no copy); panics unless BF16T.
func (t *Tensor) BF16s() []BF16 { return view[BF16](t, BF16T) }

// F16s returns the host storage as []F16 (no copy); panics unless F16T.
func (t *Tensor) F16s() []F16 { return view[F16](t, F16T) }

// E4M3s returns the host storage as []E4M3 (no copy); panics unless E4M3T.
func (t *Tensor) E4M3s() []E4M3 { return view[E4M3](t, E4M3T) }

// E5M2s returns the host storage as []E5M2 (no copy); panics unless E5M2T.
func (t *Tensor) E5M2s() []E5M2 { return view[E5M2](t, E5M2T) }

// UE8M0s returns the host storage as []UE8M0 (no copy); panics unless UE8M0T.
func (t *Tensor) UE8M0s() []UE8M0 { return view[UE8M0](t, UE8M0T) }

// I32s returns the host storage as []int32 (no copy); panics unless I32.
func (t *Tensor) I32s() []int32 { return view[int32](t, I32) }

// I64s returns the host storage as []int64 (no copy); panics unless I64.
func (t *Tensor) I64s() []int64 { return view[int64](t, I64) }

// Bytes returns a byte view of any slice of fixed-size elements (no copy),
// for writing typed data to files and sockets.
func Bytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// FromSlice wraps s (no copy) as a contiguous tensor of the given shape. The
// dtype follows the element type: float32, float64, BF16, F16, E4M3, E5M2,
// UE8M0, int32, int64, uint8. It returns ErrShape if the shape's element count
// differs from len(s) and ErrDType for other element types.
func FromSlice[T any](s []T, shape ...int) (*Tensor, error) {
	var dt DType
	switch any(s).(type) {
	case []float32:
		dt = F32
	case []float64:
		dt = F64
	case []BF16:
		dt = BF16T
	case []F16:
		dt = F16T
	case []E4M3:
		dt = E4M3T
	case []E5M2:
		dt = E5M2T
	case []UE8M0:
		dt = UE8M0T
	case []int32:
		dt = I32
	case []int64:
		dt = I64
	case []uint8:
		dt = U8
	default:
		return nil, fmt.Errorf("%w: element type %T", ErrDType, s)
	}
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	if n != len(s) {
		return nil, fmt.Errorf("%w: shape %v holds %d elements, slice has %d", ErrShape, shape, n, len(s))
	}
	return &Tensor{DType: dt, Shape: append([]int(nil), shape...), Strides: ContiguousStrides(shape), Data: Bytes(s)}, nil
}
