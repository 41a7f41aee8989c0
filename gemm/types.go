package gemm

import (
	"context"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// BlockK is the K width of one scale block and the promotion interval: every
// 128 K-elements the FP8 partial dot product is scaled by A's and B's scales
// and added into the float32 accumulator (DeepGEMM fp8_gemm.cuh, BLOCK_K).
const BlockK = 128

// ScaleFormat says how an operand's block scales are stored.
type ScaleFormat uint8

const (
	// ScaleF32 stores each scale as a float32 (DeepGEMM SM90 recipe,
	// DeepSeek-V3 weight_scale_inv).
	ScaleF32 ScaleFormat = iota
	// ScaleUE8M0 stores each scale as one tensor.UE8M0 byte, 2^(e−127)
	// (DeepGEMM SM100 recipe), in the same logical shape as ScaleF32.
	ScaleUE8M0
)

// String returns "f32" or "ue8m0".
func (f ScaleFormat) String() string {
	switch f {
	case ScaleF32:
		return "f32"
	case ScaleUE8M0:
		return "ue8m0"
	}
	return "ScaleFormat(?)"
}

// FP8Matrix is a K-major FP8 E4M3 operand with block scales: one matrix
// [Rows, K] or, with Groups > 1, a batch [Groups, Rows, K] (B of the grouped
// calls, A of the masked call). It mirrors the (data, scale) tuples that
// DeepGEMM's fp8_gemm_nt and m_grouped_fp8_gemm_nt_* take.
//
// Row r of group g starts at Data[(g*Rows+r)*Stride]. Scales cover blocks of
// ScaleRows rows × 128 K-elements: ScaleRows = 1 is the per-token 1×128
// layout (A, activations), ScaleRows = 128 the per-block 128×128 layout (B,
// weights). Their logical shape is [Groups, ceil(Rows/ScaleRows),
// ceil(K/128)], row-major (K-major), in ScalesF32 or ScalesUE8M0 as Format
// says. A K that is not a multiple of 128 leaves a shorter last block.
type FP8Matrix struct {
	// Groups is the number of matrices G in the batch; 0 means 1.
	Groups int
	// Rows and K are the dimensions of one group's matrix.
	Rows, K int
	// Stride is the element distance between consecutive rows (≥ K); 0
	// means K (contiguous).
	Stride int
	// Data holds the E4M3 values; it needs at least
	// (Groups*Rows−1)*Stride + K elements.
	Data []tensor.E4M3
	// ScaleRows is the number of rows one scale covers: 1 or 128.
	ScaleRows int
	// Format selects ScalesF32 or ScalesUE8M0.
	Format ScaleFormat
	// ScalesF32 holds [Groups, ceil(Rows/ScaleRows), ceil(K/128)] float32
	// scales when Format is ScaleF32.
	ScalesF32 []float32
	// ScalesUE8M0 holds the same logical shape as UE8M0 bytes when Format is
	// ScaleUE8M0.
	ScalesUE8M0 []tensor.UE8M0
}

// NumGroups returns Groups, or 1 when Groups is 0.
func (m *FP8Matrix) NumGroups() int {
	if m.Groups <= 0 {
		return 1
	}
	return m.Groups
}

// RowStride returns Stride, or K when Stride is 0.
func (m *FP8Matrix) RowStride() int {
	if m.Stride == 0 {
		return m.K
	}
	return m.Stride
}

// KBlocks returns ceil(K/128), the number of scale blocks along K.
func (m *FP8Matrix) KBlocks() int { return (m.K + BlockK - 1) / BlockK }

// ScaleRowsPerGroup returns ceil(Rows/ScaleRows).
func (m *FP8Matrix) ScaleRowsPerGroup() int {
	if m.ScaleRows <= 0 {
		return 0
	}
	return (m.Rows + m.ScaleRows - 1) / m.ScaleRows
}

// Scale returns the float32 scale that applies to row r of group g in K
// block kb. It does not check bounds beyond Go's own.
func (m *FP8Matrix) Scale(g, r, kb int) float32 {
	i := (g*m.ScaleRowsPerGroup()+r/m.ScaleRows)*m.KBlocks() + kb
	if m.Format == ScaleUE8M0 {
		return m.ScalesUE8M0[i].Float32()
	}
	return m.ScalesF32[i]
}

// Row returns the K values of row r of group g.
func (m *FP8Matrix) Row(g, r int) []tensor.E4M3 {
	off := (g*m.Rows + r) * m.RowStride()
	return m.Data[off : off+m.K]
}

// BF16Matrix is a K-major BF16 operand [Rows, K] of the plain BF16 GEMM
// (DeepGEMM bf16_gemm_nt). Row r starts at Data[r*Stride].
type BF16Matrix struct {
	// Rows and K are the dimensions.
	Rows, K int
	// Stride is the element distance between rows (≥ K); 0 means K.
	Stride int
	// Data needs at least (Rows−1)*Stride + K elements.
	Data []tensor.BF16
}

// RowStride returns Stride, or K when Stride is 0.
func (m *BF16Matrix) RowStride() int {
	if m.Stride == 0 {
		return m.K
	}
	return m.Stride
}

// Out is the row-major output D [Rows, Cols] of D = C + A·Bᵀ, in BF16
// (round-to-nearest-even, DeepGEMM's default) or float32: exactly one of
// BF16 and F32 is set. For the masked call Rows is Groups·Mmax ([G, Mmax, N]
// flattened). It mirrors the d and c arguments of DeepGEMM's v2 API.
type Out struct {
	// Rows and Cols are D's dimensions (M and N).
	Rows, Cols int
	// Stride is the element distance between rows of D and C (≥ Cols); 0
	// means Cols.
	Stride int
	// BF16 receives D when non-nil; it needs (Rows−1)*Stride+Cols elements.
	BF16 []tensor.BF16
	// F32 receives D when non-nil; same length rule.
	F32 []float32
	// C, when non-nil, is added: D = C + A·Bᵀ. It has D's shape and Stride
	// and may be the same slice as F32 (in-place accumulation).
	C []float32
	// ZeroUnused makes the grouped calls write zeros to the rows they do not
	// compute (mIndices −1, rows ≥ maskedM), like DeepGEMM's
	// ensure_zero_padding; by default those rows are left untouched.
	ZeroUnused bool
}

// RowStride returns Stride, or Cols when Stride is 0.
func (o *Out) RowStride() int {
	if o.Stride == 0 {
		return o.Cols
	}
	return o.Stride
}

// Caps describes what a backend can do. The conformance suite
// (gemm/gemmtest) skips, by name and with the reason, the cases a backend
// declares it cannot run.
type Caps struct {
	// Contiguous, Masked and BF16 report support for
	// GroupedContiguousNT, GroupedMaskedNT and BF16GemmNT.
	Contiguous, Masked, BF16 bool
	// ScalesF32 and ScalesUE8M0 report the scale formats accepted.
	ScalesF32, ScalesUE8M0 bool
	// OutBF16 and OutF32 report the output dtypes; Accumulate reports
	// support for Out.C.
	OutBF16, OutF32, Accumulate bool
	// Strided reports support for row strides larger than the width.
	Strided bool
	// KAlign and NAlign are the multiples K and N must be (1: any). A CUDA
	// kernel fed through TMA needs K%16 == 0 and N%8 == 0.
	KAlign, NAlign int
}

// Backend computes the FP8 (and BF16) GEMMs. Every method validates its
// arguments with the Validate* functions of this package and returns their
// errors (wrapping ErrShape, ErrScales, ErrIndices) unchanged, and
// ErrUnsupported for what Caps excludes. Implementations: gemm/ref (the
// literal definition) and gemm/cpu (packed AVX-512/AVX2 kernels).
type Backend interface {
	// Name identifies the backend ("ref", "cpu").
	Name() string
	// Caps reports what the backend supports.
	Caps() Caps
	// GemmNT computes D = C + A·Bᵀ for A [M,K] and B [N,K] (one group each),
	// D [M,N]: DeepGEMM fp8_gemm_nt.
	GemmNT(ctx context.Context, a, b *FP8Matrix, d *Out) error
	// GroupedContiguousNT computes, for every row m with g = mIndices[m] ≥ 0,
	// D[m,:] = C[m,:] + A[m,:]·B[g]ᵀ, with A [M,K], B [G,N,K], D [M,N] and
	// mIndices [M] constant within every 128-row block; rows with −1 are
	// padding: DeepGEMM m_grouped_fp8_gemm_nt_contiguous.
	GroupedContiguousNT(ctx context.Context, a, b *FP8Matrix, d *Out, mIndices []int32) error
	// GroupedMaskedNT computes, for every group g and row m < maskedM[g],
	// D[g,m,:] = C[g,m,:] + A[g,m,:]·B[g]ᵀ, with A [G,Mmax,K], B [G,N,K],
	// D [G·Mmax,N]; expectedM is a hint only: DeepGEMM
	// m_grouped_fp8_gemm_nt_masked.
	GroupedMaskedNT(ctx context.Context, a, b *FP8Matrix, d *Out, maskedM []int32, expectedM int) error
	// BF16GemmNT computes D = C + A·Bᵀ for BF16 A [M,K] and B [N,K] with
	// float32 accumulation: DeepGEMM bf16_gemm_nt.
	BF16GemmNT(ctx context.Context, a, b *BF16Matrix, d *Out) error
}
