package gemm

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// BF16Matrix is a K-major BF16 operand [Rows, K] of the plain BF16 GEMM
// (DeepGEMM bf16_gemm_nt). Row r starts at Data[r*Stride].
type BF16Matrix struct {
	// Rows and K are the dimensions.
	Rows, K int
	// Stride is the element distance between rows (≥ K); 0 means K.
	Stride int
	// Data needs at least (Rows−1)*Stride + K elements; host memory is
	// tensor.Host[tensor.BF16](slice).
	Data tensor.Storage[tensor.BF16]
}

// BF16Host is a BF16Matrix resolved to its host slice (BF16Matrix.Host).
type BF16Host struct {
	*BF16Matrix
	Data []tensor.BF16
}

// Host resolves m's storage to a host slice once (no copy). Errors: one
// wrapping tensor.ErrNotHost for storage the CPU cannot address; a nil m is
// ErrShape.
func (m *BF16Matrix) Host() (BF16Host, error) {
	if m == nil {
		return BF16Host{}, argErr("m", ErrShape, "nil matrix")
	}
	d, err := tensor.HostSlice(m.Data)
	if err != nil {
		return BF16Host{}, fmt.Errorf("field Data: %w", err)
	}
	return BF16Host{BF16Matrix: m, Data: d}, nil
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
	// Host memory is tensor.Host[tensor.BF16](slice).
	BF16 tensor.Storage[tensor.BF16]
	// F32 receives D when non-nil; same length rule.
	F32 tensor.Storage[float32]
	// C, when non-nil, is added: D = C + A·Bᵀ. It has D's shape and Stride
	// and may be the same storage as F32 (in-place accumulation).
	C tensor.Storage[float32]
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

// OutHost is an Out resolved to host slices (Out.Host); the slices are
// nil where the Out's storage is.
type OutHost struct {
	*Out
	BF16 []tensor.BF16
	F32  []float32
	C    []float32
}

// Host resolves o's storage to host slices once (no copy). Errors: one
// wrapping tensor.ErrNotHost for storage the CPU cannot address; a nil o is
// ErrShape.
func (o *Out) Host() (OutHost, error) {
	if o == nil {
		return OutHost{}, argErr("d", ErrShape, "nil output")
	}
	h := OutHost{Out: o}
	var err error
	if h.BF16, err = tensor.HostSlice(o.BF16); err != nil {
		return OutHost{}, fmt.Errorf("field BF16: %w", err)
	}
	if h.F32, err = tensor.HostSlice(o.F32); err != nil {
		return OutHost{}, fmt.Errorf("field F32: %w", err)
	}
	if h.C, err = tensor.HostSlice(o.C); err != nil {
		return OutHost{}, fmt.Errorf("field C: %w", err)
	}
	return h, nil
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

// Backend computes the FP8 (and BF16) GEMMs. Callers do not call its
// methods directly: the front functions of this package (FP8GemmNT,
// GroupedContiguousNT, GroupedMaskedNT, BF16GemmNT) validate the arguments
// once, check them against Caps, skip empty outputs (N = 0) and only then
// call the backend, so a Backend receives well-formed arguments it declared
// it supports and never re-validates them. A method returns ctx's error
// when the context is cancelled. Implementations: gemm/ref (the literal
// definition) and gemm/cpu (packed AVX-512/AVX2 kernels), constructed with
// NewBackend or their packages' New.
type Backend interface {
	// Name identifies the backend ("ref", "cpu").
	Name() string
	// Caps reports what the backend supports.
	Caps() Caps
	// GemmNT computes D = C + A·Bᵀ for A [M,K] and B [N,K] (one group each),
	// D [M,N]: DeepGEMM fp8_gemm_nt.
	GemmNT(ctx context.Context, a, b *tensor.FP8Matrix, d *Out) error
	// GroupedContiguousNT computes, for every row m with g = mIndices[m] ≥ 0,
	// D[m,:] = C[m,:] + A[m,:]·B[g]ᵀ, with A [M,K], B [G,N,K], D [M,N] and
	// mIndices [M] constant within every 128-row block; rows with −1 are
	// padding: DeepGEMM m_grouped_fp8_gemm_nt_contiguous.
	GroupedContiguousNT(ctx context.Context, a, b *tensor.FP8Matrix, d *Out, mIndices []int32) error
	// GroupedMaskedNT computes, for every group g and row m < maskedM[g],
	// D[g,m,:] = C[g,m,:] + A[g,m,:]·B[g]ᵀ, with A [G,Mmax,K], B [G,N,K],
	// D [G·Mmax,N]; expectedM is a hint only: DeepGEMM
	// m_grouped_fp8_gemm_nt_masked.
	GroupedMaskedNT(ctx context.Context, a, b *tensor.FP8Matrix, d *Out, maskedM []int32, expectedM int) error
	// BF16GemmNT computes D = C + A·Bᵀ for BF16 A [M,K] and B [N,K] with
	// float32 accumulation: DeepGEMM bf16_gemm_nt.
	BF16GemmNT(ctx context.Context, a, b *BF16Matrix, d *Out) error
}
