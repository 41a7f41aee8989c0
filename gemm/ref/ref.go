package ref

import (
	"context"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Backend is the reference implementation of gemm.Backend. Its zero value
// is ready to use.
type Backend struct{}

// New returns the reference backend.
func New() *Backend { return &Backend{} }

func init() {
	gemm.Register("ref", "pure Go, the literal spec", nil,
		func(gemm.Options) (gemm.Backend, error) { return New(), nil })
}

// Name returns "ref".
func (*Backend) Name() string { return "ref" }

// Caps reports full support: every call, both scale formats, both output
// dtypes, C accumulation, strides, any K and N.
func (*Backend) Caps() gemm.Caps {
	return gemm.Caps{Contiguous: true, Masked: true, BF16: true, ScalesF32: true, ScalesUE8M0: true,
		OutBF16: true, OutF32: true, Accumulate: true, Strided: true, KAlign: 1, NAlign: 1}
}

// row computes D[dRow, :] from row aRow of group ag of a and group bg of b.
func row(a, b tensor.FP8Host, d gemm.OutHost, ag, aRow, bg, dRow int) {
	ar := a.Row(ag, aRow)
	kbs := a.KBlocks()
	for n := 0; n < b.Rows; n++ {
		br := b.Row(bg, n)
		var acc float32
		for kb := 0; kb < kbs; kb++ {
			lo, hi := kb*tensor.ScaleBlock, min((kb+1)*tensor.ScaleBlock, a.K)
			var part float32
			for k := lo; k < hi; k++ {
				p := float32(ar[k].Float32() * br[k].Float32())
				part = float32(part + p)
			}
			s := float32(a.Scale(ag, aRow, kb) * b.Scale(bg, n, kb))
			acc = float32(acc + float32(s*part))
		}
		store(d, dRow, n, acc)
	}
}

func store(d gemm.OutHost, r, c int, acc float32) {
	i := r*d.RowStride() + c
	if d.C != nil {
		acc = float32(d.C[i] + acc)
	}
	if d.F32 != nil {
		d.F32[i] = acc
	} else {
		d.BF16[i] = tensor.BF16FromFloat32(acc)
	}
}

func zeroRow(d gemm.OutHost, r int) {
	off := r * d.RowStride()
	for c := 0; c < d.Cols; c++ {
		if d.F32 != nil {
			d.F32[off+c] = 0
		} else {
			d.BF16[off+c] = 0
		}
	}
}

// GemmNT computes D = C + A·Bᵀ (DeepGEMM fp8_gemm_nt). It receives
// arguments gemm.FP8GemmNT validated. Errors: ctx's error if it is
// cancelled between rows.
func (*Backend) GemmNT(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out) error {
	return fp8Rows(ctx, am, bm, dm, 1, func(_, _ int) int { return 0 })
}

// GroupedContiguousNT computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ for rows
// with mIndices[m] ≥ 0 (DeepGEMM m_grouped_fp8_gemm_nt_contiguous). Rows
// with −1 are left untouched, or zeroed when d.ZeroUnused. It receives
// arguments gemm.GroupedContiguousNT validated. Errors: ctx's error.
func (*Backend) GroupedContiguousNT(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, mIndices []int32) error {
	return fp8Rows(ctx, am, bm, dm, 1, func(_, m int) int { return int(mIndices[m]) })
}

// GroupedMaskedNT computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_fp8_gemm_nt_masked); other rows are left
// untouched, or zeroed when d.ZeroUnused. expectedM is ignored. It receives
// arguments gemm.GroupedMaskedNT validated. Errors: ctx's error.
func (*Backend) GroupedMaskedNT(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, maskedM []int32, expectedM int) error {
	return fp8Rows(ctx, am, bm, dm, am.NumGroups(), func(g, m int) int {
		if m < int(maskedM[g]) {
			return g
		}
		return -1
	})
}

// fp8Rows computes the rows m of A's groups g < groups in order, each into
// D row g·rows+m against B group bGroup(g, m); a row whose bGroup is
// negative is left untouched, or zeroed when d.ZeroUnused. It checks ctx
// before every row.
func fp8Rows(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, groups int, bGroup func(g, m int) int) error {
	a, b, d, err := gemm.HostFP8("ref", am, bm, dm)
	if err != nil {
		return err
	}
	for g := 0; g < groups; g++ {
		for m := 0; m < a.Rows; m++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			switch bg, dRow := bGroup(g, m), g*a.Rows+m; {
			case bg >= 0:
				row(a, b, d, g, m, bg, dRow)
			case d.ZeroUnused:
				zeroRow(d, dRow)
			}
		}
	}
	return nil
}

// BF16GemmNT computes D = C + A·Bᵀ for BF16 operands with a float32
// accumulator over all of K (DeepGEMM bf16_gemm_nt). It receives arguments
// gemm.BF16GemmNT validated. Errors: ctx's error.
func (*Backend) BF16GemmNT(ctx context.Context, am, bm *gemm.BF16Matrix, dm *gemm.Out) error {
	a, b, d, err := gemm.HostBF16("ref", am, bm, dm)
	if err != nil {
		return err
	}
	for m := 0; m < a.Rows; m++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		ar := a.Data[min(m*a.RowStride(), len(a.Data)):]
		for n := 0; n < b.Rows; n++ {
			br := b.Data[min(n*b.RowStride(), len(b.Data)):]
			var acc float32
			for k := 0; k < a.K; k++ {
				acc = float32(acc + float32(ar[k].Float32()*br[k].Float32()))
			}
			store(d, m, n, acc)
		}
	}
	return nil
}
