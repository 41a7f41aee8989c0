package gemm

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// AmaxClamp is the smallest block amax the quantizers use, so that all-zero
// blocks get a finite scale (DeepGEMM per_token_cast_to_fp8:
// x_amax.clamp(1e-4)).
const AmaxClamp = 1e-4

// QuantOptions tunes the quantizers.
type QuantOptions struct {
	// UE8M0 rounds every scale up to a power of two (tensor.UE8M0Ceil,
	// DeepGEMM ceil_to_ue8m0) and stores it as ScaleUE8M0 bytes.
	UE8M0 bool
}

// MAlignmentForContiguous returns 128, the row alignment of every group's
// segment in the contiguous grouped layout (DeepGEMM
// get_m_alignment_for_contiguous_layout).
func MAlignmentForContiguous() int { return 128 }

// AlignM rounds m up to the contiguous-layout alignment (128).
func AlignM(m int) int {
	a := MAlignmentForContiguous()
	return (m + a - 1) / a * a
}

// TMAAlignedSize rounds n elements of elemBytes bytes up to a multiple of 16
// bytes (DeepGEMM get_tma_aligned_size). elemBytes must divide 16.
func TMAAlignedSize(n, elemBytes int) int {
	a := 16 / elemBytes
	return (n + a - 1) / a * a
}

func checkQuantInput(x []float32, rows, k int) error {
	if rows < 0 || k < 0 || !mulOK(rows, k) {
		return argErr("rows,k", ErrShape, "bad dimensions [%d,%d]", rows, k)
	}
	if len(x) != rows*k {
		return argErr("x", ErrShape, "len %d, want rows·k = %d", len(x), rows*k)
	}
	return nil
}

// blockScale turns a block amax into (scale, 1/scale, UE8M0 code). NaN
// propagates.
func blockScale(amax float32, opt QuantOptions) (float32, float32, tensor.UE8M0) {
	if amax < AmaxClamp {
		amax = AmaxClamp
	}
	sf := amax / tensor.E4M3Max
	var code tensor.UE8M0
	if opt.UE8M0 {
		code = tensor.UE8M0Ceil(sf)
		sf = code.Float32()
	}
	return sf, 1 / sf, code
}

func absMax(amax, v float32) float32 {
	if v != v || amax != amax {
		return float32(math.NaN())
	}
	if v < 0 {
		v = -v
	}
	if v > amax {
		return v
	}
	return amax
}

func newQuantized(rows, k, scaleRows int, opt QuantOptions) *FP8Matrix {
	m := &FP8Matrix{Groups: 1, Rows: rows, K: k, Data: make([]tensor.E4M3, rows*k), ScaleRows: scaleRows}
	n := m.ScaleRowsPerGroup() * m.KBlocks()
	if opt.UE8M0 {
		m.Format = ScaleUE8M0
		m.ScalesUE8M0 = make([]tensor.UE8M0, n)
	} else {
		m.ScalesF32 = make([]float32, n)
	}
	return m
}

// QuantizePerToken quantizes x [rows, k] (row-major float32) to E4M3 with
// one scale per row and 128-wide K block (1×128, the activation layout):
// amax = max|x| over the block, clamped to ≥ 1e−4; scale = amax/448
// (optionally rounded up to a power of two); data = e4m3(x · (1/scale)),
// round-to-nearest-even, saturating. A short last K block is quantized on
// its own elements. It mirrors DeepGEMM deep_gemm/utils/math.py
// per_token_cast_to_fp8. Errors: ErrShape if len(x) != rows·k.
func QuantizePerToken(x []float32, rows, k int, opt QuantOptions) (*FP8Matrix, error) {
	if err := checkQuantInput(x, rows, k); err != nil {
		return nil, err
	}
	m := newQuantized(rows, k, 1, opt)
	if rows == 0 || k == 0 {
		return m, nil
	}
	kbs := m.KBlocks()
	for r := 0; r < rows; r++ {
		row := x[r*k : (r+1)*k]
		for kb := 0; kb < kbs; kb++ {
			lo, hi := kb*BlockK, min((kb+1)*BlockK, k)
			var amax float32
			for _, v := range row[lo:hi] {
				amax = absMax(amax, v)
			}
			sf, inv, code := blockScale(amax, opt)
			if opt.UE8M0 {
				m.ScalesUE8M0[r*kbs+kb] = code
			} else {
				m.ScalesF32[r*kbs+kb] = sf
			}
			for i := lo; i < hi; i++ {
				m.Data[r*k+i] = tensor.E4M3FromFloat32(row[i] * inv)
			}
		}
	}
	return m, nil
}

// QuantizePerBlock quantizes x [rows, k] (row-major float32) to E4M3 with
// one scale per 128×128 block (the weight layout, DeepSeek-V3
// weight_scale_inv [ceil(rows/128), ceil(k/128)]): amax over the block
// (edge blocks over their own elements), clamped to ≥ 1e−4, scale =
// amax/448 (optionally a power of two), data = e4m3(x · (1/scale)). It
// mirrors DeepGEMM per_block_cast_to_fp8. Errors: ErrShape if len(x) !=
// rows·k.
func QuantizePerBlock(x []float32, rows, k int, opt QuantOptions) (*FP8Matrix, error) {
	if err := checkQuantInput(x, rows, k); err != nil {
		return nil, err
	}
	m := newQuantized(rows, k, BlockK, opt)
	if rows == 0 || k == 0 {
		return m, nil
	}
	kbs := m.KBlocks()
	for rb := 0; rb < m.ScaleRowsPerGroup(); rb++ {
		r0, r1 := rb*BlockK, min((rb+1)*BlockK, rows)
		for kb := 0; kb < kbs; kb++ {
			lo, hi := kb*BlockK, min((kb+1)*BlockK, k)
			var amax float32
			for r := r0; r < r1; r++ {
				for _, v := range x[r*k+lo : r*k+hi] {
					amax = absMax(amax, v)
				}
			}
			sf, inv, code := blockScale(amax, opt)
			if opt.UE8M0 {
				m.ScalesUE8M0[rb*kbs+kb] = code
			} else {
				m.ScalesF32[rb*kbs+kb] = sf
			}
			for r := r0; r < r1; r++ {
				for i := lo; i < hi; i++ {
					m.Data[r*k+i] = tensor.E4M3FromFloat32(x[r*k+i] * inv)
				}
			}
		}
	}
	return m, nil
}

// Stack concatenates single-group operands of equal Rows, K, ScaleRows and
// Format into one batch [G, Rows, K] (the B of the grouped calls, the A of
// the masked call). Errors: ErrShape or ErrScales on a mismatch.
func Stack(ms ...*FP8Matrix) (*FP8Matrix, error) {
	if len(ms) == 0 {
		return nil, argErr("ms", ErrShape, "no matrices")
	}
	f := ms[0]
	out := &FP8Matrix{Groups: len(ms), Rows: f.Rows, K: f.K, ScaleRows: f.ScaleRows, Format: f.Format}
	for i, m := range ms {
		if err := validateFP8("ms", m, 1); err != nil {
			return nil, err
		}
		if m.Rows != f.Rows || m.K != f.K || m.ScaleRows != f.ScaleRows || m.Format != f.Format {
			return nil, argErr("ms", ErrShape, "matrix %d differs from matrix 0 in shape or scale layout", i)
		}
		for r := 0; r < m.Rows && m.K > 0; r++ {
			out.Data = append(out.Data, m.Row(0, r)...)
		}
		out.ScalesF32 = append(out.ScalesF32, m.ScalesF32...)
		out.ScalesUE8M0 = append(out.ScalesUE8M0, m.ScalesUE8M0...)
	}
	return out, nil
}

// Dequantize returns m's values as float32 [Groups·Rows, K] row-major:
// e4m3 value × its block's scale (E4M3 NaN gives NaN). Errors: those of
// validation (ErrShape, ErrScales).
func Dequantize(m *FP8Matrix) ([]float32, error) {
	if err := validateFP8("m", m, -1); err != nil {
		return nil, err
	}
	g := m.NumGroups()
	out := make([]float32, g*m.Rows*m.K)
	if len(out) == 0 {
		return out, nil
	}
	for gi := 0; gi < g; gi++ {
		for r := 0; r < m.Rows; r++ {
			row := m.Row(gi, r)
			dst := out[(gi*m.Rows+r)*m.K:]
			for i, v := range row {
				dst[i] = v.Float32() * m.Scale(gi, r, i/BlockK)
			}
		}
	}
	return out, nil
}

// PackUE8M0 packs UE8M0 scales [rows, kBlocks] (row-major) four per uint32
// along K, little-endian: byte j of word i of a row is K block 4i+j; missing
// trailing blocks are zero bytes. The result is [rows, ceil(kBlocks/4)], the
// int32 scale layout of DeepGEMM's SM100 kernels
// (get_mn_major_tma_aligned_packed_ue8m0_tensor, before the MN-major
// transpose). Errors: ErrShape if len(sf) != rows·kBlocks.
func PackUE8M0(sf []tensor.UE8M0, rows, kBlocks int) ([]uint32, error) {
	if rows < 0 || kBlocks < 0 || !mulOK(rows, kBlocks) || len(sf) != rows*kBlocks {
		return nil, argErr("sf", ErrShape, "len %d, want rows·kBlocks = %d·%d", len(sf), rows, kBlocks)
	}
	w := (kBlocks + 3) / 4
	out := make([]uint32, rows*w)
	if len(out) == 0 {
		return out, nil
	}
	for r := 0; r < rows; r++ {
		for kb := 0; kb < kBlocks; kb++ {
			out[r*w+kb/4] |= uint32(sf[r*kBlocks+kb]) << (8 * (kb % 4))
		}
	}
	return out, nil
}

// UnpackUE8M0 inverts PackUE8M0: packed [rows, ceil(kBlocks/4)] to
// [rows, kBlocks]. Errors: ErrShape on a length mismatch.
func UnpackUE8M0(packed []uint32, rows, kBlocks int) ([]tensor.UE8M0, error) {
	w := (kBlocks + 3) / 4
	if rows < 0 || kBlocks < 0 || !mulOK(rows, w) || len(packed) != rows*w {
		return nil, argErr("packed", ErrShape, "len %d, want rows·ceil(kBlocks/4) = %d·%d", len(packed), rows, w)
	}
	out := make([]tensor.UE8M0, rows*kBlocks)
	if len(out) == 0 {
		return out, nil
	}
	for r := 0; r < rows; r++ {
		for kb := 0; kb < kBlocks; kb++ {
			out[r*kBlocks+kb] = tensor.UE8M0(packed[r*w+kb/4] >> (8 * (kb % 4)))
		}
	}
	return out, nil
}

// MNMajorTMAAligned transposes scales [groups, mn, cols] (row-major, the
// K-major layout this package uses) into the MN-major, TMA-aligned layout
// DeepGEMM's CUDA kernels read: [groups, cols, alignedMN] with alignedMN =
// TMAAlignedSize(mn, 4), i.e. element (g, r, c) at
// g·cols·alignedMN + c·alignedMN + r (DeepGEMM
// get_col_major_tma_aligned_tensor). T is float32 (SM90 scales) or uint32
// (packed UE8M0). Padding entries are zero. It returns the data and
// alignedMN (the stride between K columns). Errors: ErrShape on a length
// mismatch.
func MNMajorTMAAligned[T float32 | uint32](src []T, groups, mn, cols int) ([]T, int, error) {
	if groups < 0 || mn < 0 || cols < 0 || !mulOK(groups, mn) || !mulOK(groups*mn, cols) || len(src) != groups*mn*cols {
		return nil, 0, argErr("src", ErrShape, "len %d, want groups·mn·cols = %d·%d·%d", len(src), groups, mn, cols)
	}
	am := TMAAlignedSize(mn, 4)
	if !mulOK(groups, am) || !mulOK(groups*am, cols) {
		return nil, 0, argErr("mn", ErrShape, "groups·cols·alignedMN too large")
	}
	out := make([]T, groups*cols*am)
	if len(src) == 0 {
		return out, am, nil
	}
	for g := 0; g < groups; g++ {
		for r := 0; r < mn; r++ {
			for c := 0; c < cols; c++ {
				out[(g*cols+c)*am+r] = src[(g*mn+r)*cols+c]
			}
		}
	}
	return out, am, nil
}
