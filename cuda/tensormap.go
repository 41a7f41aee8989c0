package cuda

import (
	"fmt"
	"unsafe"
)

// TensorMap is an encoded TMA descriptor (CUtensorMap, 128 bytes). Pass it
// to a kernel by value with Args.TensorMap, as a __grid_constant__
// parameter.
type TensorMap [128]byte

// TensorMapDataType is a TMA element type (CUtensorMapDataType).
type TensorMapDataType uint32

// TMA element types (cuda.h).
const (
	TMAUint8    TensorMapDataType = 0 // also FP8 (E4M3/E5M2) bytes
	TMAUint16   TensorMapDataType = 1
	TMAUint32   TensorMapDataType = 2
	TMAInt32    TensorMapDataType = 3
	TMAFloat16  TensorMapDataType = 6
	TMAFloat32  TensorMapDataType = 7
	TMABFloat16 TensorMapDataType = 9
)

func (t TensorMapDataType) size() int {
	switch t {
	case TMAUint8:
		return 1
	case TMAUint16, TMAFloat16, TMABFloat16:
		return 2
	case TMAUint32, TMAInt32, TMAFloat32:
		return 4
	}
	return 0
}

// TensorMapSwizzle is the shared-memory swizzle of a TMA box
// (CUtensorMapSwizzle).
type TensorMapSwizzle uint32

// Swizzle modes.
const (
	SwizzleNone TensorMapSwizzle = 0
	Swizzle32B  TensorMapSwizzle = 1
	Swizzle64B  TensorMapSwizzle = 2
	Swizzle128B TensorMapSwizzle = 3
)

// TiledTensorMap describes a tiled TMA copy (cuTensorMapEncodeTiled).
// Dimensions run innermost first, as in cuda.h.
type TiledTensorMap struct {
	DataType TensorMapDataType
	Base     DevicePtr // 16-byte aligned
	Dims     []uint64  // rank 1..5 sizes in elements, innermost first
	Strides  []uint64  // rank-1 byte strides of dims 1..rank-1, multiples of 16
	Box      []uint32  // box size per dim, each 1..256; Box[0]*elemsize a multiple of 16
	Swizzle  TensorMapSwizzle
	// L2Promotion is CUtensorMapL2promotion (0 none, 1 64B, 2 128B, 3 256B).
	L2Promotion uint32
}

func (m TiledTensorMap) validate() error {
	rank := len(m.Dims)
	es := m.DataType.size()
	switch {
	case es == 0:
		return fmt.Errorf("%w: TiledTensorMap.DataType %d unknown", ErrInvalid, m.DataType)
	case rank < 1 || rank > 5:
		return fmt.Errorf("%w: TiledTensorMap.Dims rank %d not in 1..5", ErrInvalid, rank)
	case len(m.Strides) != rank-1:
		return fmt.Errorf("%w: TiledTensorMap.Strides has %d entries, want rank-1 = %d", ErrInvalid, len(m.Strides), rank-1)
	case len(m.Box) != rank:
		return fmt.Errorf("%w: TiledTensorMap.Box has %d entries, want %d", ErrInvalid, len(m.Box), rank)
	case m.Base%16 != 0:
		return fmt.Errorf("%w: TiledTensorMap.Base %#x is not 16-byte aligned", ErrInvalid, uint64(m.Base))
	case m.Swizzle > Swizzle128B || m.L2Promotion > 3:
		return fmt.Errorf("%w: TiledTensorMap.Swizzle %d / L2Promotion %d", ErrInvalid, m.Swizzle, m.L2Promotion)
	}
	for i, d := range m.Dims {
		if d == 0 || d > 1<<32 {
			return fmt.Errorf("%w: TiledTensorMap.Dims[%d] = %d", ErrInvalid, i, d)
		}
		if m.Box[i] == 0 || m.Box[i] > 256 {
			return fmt.Errorf("%w: TiledTensorMap.Box[%d] = %d not in 1..256", ErrInvalid, i, m.Box[i])
		}
	}
	for i, s := range m.Strides {
		if s%16 != 0 || s >= 1<<40 {
			return fmt.Errorf("%w: TiledTensorMap.Strides[%d] = %d must be a multiple of 16 below 2^40", ErrInvalid, i, s)
		}
	}
	if int(m.Box[0])*es%16 != 0 {
		return fmt.Errorf("%w: TiledTensorMap.Box[0] = %d elements is not a multiple of 16 bytes", ErrInvalid, m.Box[0])
	}
	return nil
}

// EncodeTiled encodes the descriptor (cuTensorMapEncodeTiled, element
// strides 1, no interleave, out-of-bounds elements read as zero). It needs
// no current context. Bad descriptions are caught first and wrap
// ErrInvalid naming the field.
func (d *Driver) EncodeTiled(m TiledTensorMap) (*TensorMap, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	rank := len(m.Dims)
	dims := append([]uint64(nil), m.Dims...)
	strides := append([]uint64(nil), m.Strides...)
	strides = append(strides, 0) // never empty, so &strides[0] is valid at rank 1
	box := append([]uint32(nil), m.Box...)
	elem := make([]uint32, rank)
	for i := range elem {
		elem[i] = 1
	}
	raw := make([]byte, 128+64) // CUtensorMap must be 64-byte aligned
	shift := alignUp(int(uintptr(unsafe.Pointer(&raw[0]))), 64) - int(uintptr(unsafe.Pointer(&raw[0])))
	out := raw[shift : shift+128]
	err := d.call(fnTensorMapEncodeTiled, uintptr(unsafe.Pointer(&out[0])), uintptr(m.DataType), uintptr(rank),
		uintptr(m.Base), uintptr(unsafe.Pointer(&dims[0])), uintptr(unsafe.Pointer(&strides[0])),
		uintptr(unsafe.Pointer(&box[0])), uintptr(unsafe.Pointer(&elem[0])),
		0, uintptr(m.Swizzle), uintptr(m.L2Promotion), 0)
	if err != nil {
		return nil, err
	}
	var tm TensorMap
	copy(tm[:], out)
	return &tm, nil
}
