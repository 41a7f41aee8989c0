package safetensors

import (
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// FP8 returns the FP8 weight called weight (F8_E4M3 [Rows, K] or [G, Rows,
// K]) and its scales called scaleInv (F32 or UE8M0 weight_scale_inv,
// [ceil(Rows/128), ceil(K/128)] or [Rows, ceil(K/128)], with G when the
// weight has it) as one operand, ready for the gemm calls (see
// tensor.FP8FromTensors). DeepSeek-V3 checkpoints name the pair
// "<linear>.weight" and "<linear>.weight_scale_inv". The values alias the
// file's memory (valid until Close), except scales at an offset not
// aligned for float32, which are copied. Errors: ErrNotFound naming a
// missing tensor, or those of tensor.FP8FromTensors.
func (f *File) FP8(weight, scaleInv string) (*tensor.FP8Matrix, error) {
	w, err := f.Tensor(weight)
	if err != nil {
		return nil, err
	}
	s, err := f.Tensor(scaleInv)
	if err != nil {
		return nil, err
	}
	if len(s.Data) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(s.Data)))%unsafe.Alignof(float32(0)) != 0 {
		s.Data = append(make([]byte, 0, len(s.Data)), s.Data...)
	}
	return tensor.FP8FromTensors(w, s)
}
