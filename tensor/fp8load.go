package tensor

import "fmt"

// FP8FromTensors wraps a checkpoint's FP8 weight and its scales (no copy)
// as one operand: weight is F8_E4M3 [Rows, K] or, stacked, [G, Rows, K];
// scaleInv holds the dequantization multipliers (DeepSeek-V3's
// weight_scale_inv: x ≈ fp8·scale) as F32 or UE8M0, [ceil(Rows/128),
// ceil(K/128)] for 128×128 weight blocks or [Rows, ceil(K/128)] for
// per-token 1×128 rows, with the leading G when weight has one. Both must
// be contiguous. The operand aliases the tensors' host bytes. Errors:
// ErrDType for other dtypes, a *FieldError wrapping ErrShape or ErrScales
// for shapes that do not pair up.
func FP8FromTensors(weight, scaleInv *Tensor) (*FP8Matrix, error) {
	if weight == nil || scaleInv == nil {
		return nil, fieldErr("", ErrShape, "nil weight or scale tensor")
	}
	if weight.DType != E4M3T {
		return nil, fmt.Errorf("%w: weight is %v, want %v", ErrDType, weight.DType, E4M3T)
	}
	if scaleInv.DType != F32 && scaleInv.DType != UE8M0T {
		return nil, fmt.Errorf("%w: scales are %v, want %v or %v", ErrDType, scaleInv.DType, F32, UE8M0T)
	}
	for _, t := range []*Tensor{weight, scaleInv} {
		if err := t.Check(); err != nil {
			return nil, err
		}
		if !t.IsContiguous() {
			return nil, fieldErr("", ErrShape, "%v tensor %v is not contiguous", t.DType, t.Shape)
		}
	}
	ws, ss := weight.Shape, scaleInv.Shape
	if len(ws) != 2 && len(ws) != 3 || len(ss) != len(ws) {
		return nil, fieldErr("", ErrShape, "weight %v and scales %v: want [Rows, K] and [.., ceil(K/128)], or both with a leading group dimension", ws, ss)
	}
	m := &FP8Matrix{Groups: 1}
	if len(ws) == 3 {
		if ss[0] != ws[0] {
			return nil, fieldErr("", ErrScales, "weight has %d groups, scales %d", ws[0], ss[0])
		}
		m.Groups, ws, ss = ws[0], ws[1:], ss[1:]
	}
	m.Rows, m.K = ws[0], ws[1]
	switch kb := (m.K + ScaleBlock - 1) / ScaleBlock; {
	case ss[1] != kb:
		return nil, fieldErr("", ErrScales, "scales %v for K = %d: want %d K blocks", scaleInv.Shape, m.K, kb)
	case ss[0] == (m.Rows+ScaleBlock-1)/ScaleBlock:
		m.ScaleRows = ScaleBlock
	case ss[0] == m.Rows:
		m.ScaleRows = 1
	default:
		return nil, fieldErr("", ErrScales, "scales %v for %d rows: want %d (128-row blocks) or %d (per row) scale rows",
			scaleInv.Shape, m.Rows, (m.Rows+ScaleBlock-1)/ScaleBlock, m.Rows)
	}
	// Trim to the logical sizes: the views cover every byte of Data.
	m.Data = Host[E4M3](weight.E4M3s()[:weight.Len()])
	if scaleInv.DType == UE8M0T {
		m.Format, m.ScalesUE8M0 = ScaleUE8M0, Host[UE8M0](scaleInv.UE8M0s()[:scaleInv.Len()])
	} else {
		m.ScalesF32 = Host[float32](scaleInv.F32()[:scaleInv.Len()])
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return m, nil
}

// Tensors returns m's data [G, Rows, K] (or [Rows, K] for one group) and
// scales [G, ceil(Rows/ScaleRows), ceil(K/128)] (or without G) as host
// tensors aliasing m (no copy), the inverse of FP8FromTensors, for writing
// an operand to a safetensors file. m must be contiguous (Stride 0 or K).
// Errors: those of m.Check, ErrShape for a strided m, or one wrapping
// ErrNotHost.
func (m *FP8Matrix) Tensors() (data, scales *Tensor, err error) {
	if err := m.Check(); err != nil {
		return nil, nil, err
	}
	h, err := m.Host()
	if err != nil {
		return nil, nil, err
	}
	if m.RowStride() != m.K {
		return nil, nil, fieldErr("Stride", ErrShape, "stride %d != K %d: not contiguous", m.Stride, m.K)
	}
	ds := []int{m.Rows, m.K}
	ss := []int{m.ScaleRowsPerGroup(), m.KBlocks()}
	if m.Groups > 1 {
		ds = append([]int{m.Groups}, ds...)
		ss = append([]int{m.Groups}, ss...)
	}
	if data, err = FromSlice(h.Data[:m.NumGroups()*m.Rows*m.K], ds...); err != nil {
		return nil, nil, err
	}
	if m.Format == ScaleUE8M0 {
		scales, err = FromSlice(h.ScalesUE8M0, ss...)
	} else {
		scales, err = FromSlice(h.ScalesF32, ss...)
	}
	return data, scales, err
}
