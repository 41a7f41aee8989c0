package ref

import (
	"context"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

var _ gemm.FP4Backend = (*Backend)(nil)

// fp4Row computes D[dRow, :] from row aRow of group ag of FP8 a and group
// bg of FP4 b: for every block of min(128, b.ScaleK) K-elements (on which
// both scales are constant) a float32 partial sum of the exact products,
// promoted into the float32 accumulator with the product of the two scales.
func fp4Row(a tensor.FP8Host, b tensor.FP4Host, d gemm.OutHost, ag, aRow, bg, dRow int) {
	ar := a.Row(ag, aRow)
	blk := min(tensor.ScaleBlock, b.ScaleK)
	for n := 0; n < b.Rows; n++ {
		br := b.Row(bg, n)
		var acc float32
		for lo := 0; lo < a.K; lo += blk {
			hi := min(lo+blk, a.K)
			var part float32
			for k := lo; k < hi; k++ {
				bv := br[k/2].Lo()
				if k%2 == 1 {
					bv = br[k/2].Hi()
				}
				p := float32(ar[k].Float32() * bv.Float32())
				part = float32(part + p)
			}
			s := float32(a.Scale(ag, aRow, lo/tensor.ScaleBlock) * b.Scale(bg, n, lo/b.ScaleK))
			acc = float32(acc + float32(s*part))
		}
		store(d, dRow, n, acc)
	}
}

// FP8FP4GemmNT computes D = C + A·Bᵀ for FP8 A and FP4 B (DeepGEMM
// fp8_fp4_gemm_nt). It receives arguments gemm.FP8FP4GemmNT validated.
// Errors: ctx's error if it is cancelled between rows.
func (*Backend) FP8FP4GemmNT(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out) error {
	return fp4Rows(ctx, am, bm, dm, 1, func(_, _ int) int { return 0 })
}

// FP8FP4GroupedContiguousNT computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ for
// rows with mIndices[m] ≥ 0 (DeepGEMM m_grouped_fp8_fp4_gemm_nt_contiguous);
// rows with −1 are left untouched, or zeroed when d.ZeroUnused. Errors:
// ctx's error.
func (*Backend) FP8FP4GroupedContiguousNT(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out, mIndices []int32) error {
	return fp4Rows(ctx, am, bm, dm, 1, func(_, m int) int { return int(mIndices[m]) })
}

// FP8FP4GroupedMaskedNT computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_fp8_fp4_gemm_nt_masked); other rows are
// left untouched, or zeroed when d.ZeroUnused. expectedM is ignored.
// Errors: ctx's error.
func (*Backend) FP8FP4GroupedMaskedNT(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out, maskedM []int32, expectedM int) error {
	return fp4Rows(ctx, am, bm, dm, am.NumGroups(), func(g, m int) int {
		if m < int(maskedM[g]) {
			return g
		}
		return -1
	})
}

// fp4Rows is fp8Rows for an FP4 B.
func fp4Rows(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out, groups int, bGroup func(g, m int) int) error {
	a, b, d, err := gemm.HostFP8FP4("ref", am, bm, dm)
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
				fp4Row(a, b, d, g, m, bg, dRow)
			case d.ZeroUnused:
				zeroRow(d, dRow)
			}
		}
	}
	return nil
}
