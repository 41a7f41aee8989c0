package ref

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

var _ gemm.TrainingBackend = (*Backend)(nil)

// side is one operand of the literal training GEMMs seen through its
// logical [rows, K] shape, whatever its storage order: fill writes the
// values of logical row r (E4M3 or BF16 decoded to float32, K of them) and
// scale returns the block scale of row r in K block kb (1 for BF16).
type side struct {
	rows  int
	fill  func(r int, dst []float32)
	scale func(r, kb int) float32
}

func kSide(h tensor.FP8Host) side {
	return side{rows: h.Rows,
		fill: func(r int, dst []float32) {
			for k, v := range h.Row(0, r) {
				dst[k] = v.Float32()
			}
		},
		scale: func(r, kb int) float32 { return h.Scale(0, r, kb) }}
}

// mnSide is the logical rows [0, MN) of h restricted to K range [k0,
// k0+k), K blocks counted from k0 (a multiple of 128).
func mnSide(h tensor.FP8MNHost, k0, k int) side {
	return side{rows: h.MN,
		fill: func(r int, dst []float32) {
			for i := range k {
				dst[i] = h.At(r, k0+i).Float32()
			}
		},
		scale: func(r, kb int) float32 { return h.Scale(r, k0/tensor.ScaleBlock+kb) }}
}

func one(int, int) float32 { return 1 }

func bf16KSide(h gemm.BF16Host, r0, rows int) side {
	return side{rows: rows, scale: one,
		fill: func(r int, dst []float32) {
			row := h.Data[(r0+r)*h.RowStride():]
			for k := range dst {
				dst[k] = row[k].Float32()
			}
		}}
}

func bf16MNSide(h gemm.BF16MNHost, k0 int) side {
	return side{rows: h.MN, scale: one,
		fill: func(r int, dst []float32) {
			for i := range dst {
				dst[i] = h.Data[(k0+i)*h.RowStride()+r].Float32()
			}
		}}
}

// literal computes D rows [dRow0, dRow0+a.rows) = C + A·Bᵀ over K
// elements. With promote (FP8), every 128-K block's products are summed in
// float32, multiplied by float32(sa·sb) and added to the float32
// accumulator, as in Backend.GemmNT; without (BF16), the products are
// summed in float32 over all of K. rowOK(m) false skips row m (left
// untouched, or zeroed with d.ZeroUnused). It checks ctx before every row.
func literal(ctx context.Context, a, b side, k int, d gemm.OutHost, dRow0 int, promote bool, rowOK func(m int) bool) error {
	bv := make([]float32, b.rows*k)
	for n := 0; n < b.rows; n++ {
		b.fill(n, bv[n*k:(n+1)*k])
	}
	ar := make([]float32, k)
	kbs := (k + tensor.ScaleBlock - 1) / tensor.ScaleBlock
	for m := 0; m < a.rows; m++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rowOK != nil && !rowOK(m) {
			if d.ZeroUnused {
				zeroRow(d, dRow0+m)
			}
			continue
		}
		a.fill(m, ar)
		for n := 0; n < b.rows; n++ {
			br := bv[n*k : (n+1)*k]
			var acc float32
			if !promote {
				for i, x := range ar {
					acc = float32(acc + float32(x*br[i]))
				}
				store(d, dRow0+m, n, acc)
				continue
			}
			for kb := 0; kb < kbs; kb++ {
				lo, hi := kb*tensor.ScaleBlock, min((kb+1)*tensor.ScaleBlock, k)
				var part float32
				for i := lo; i < hi; i++ {
					part = float32(part + float32(ar[i]*br[i]))
				}
				s := float32(a.scale(m, kb) * b.scale(n, kb))
				acc = float32(acc + float32(s*part))
			}
			store(d, dRow0+m, n, acc)
		}
	}
	return nil
}

func hostMN(m *tensor.FP8MNMatrix, arg string) (tensor.FP8MNHost, error) {
	h, err := m.Host()
	if err != nil {
		return h, fmt.Errorf("gemm: %s: ref backend computes on the host: %w (%w)", arg, err, gemm.ErrUnsupported)
	}
	return h, nil
}

func hostK(m *tensor.FP8Matrix, arg string) (tensor.FP8Host, error) {
	h, err := m.Host()
	if err != nil {
		return h, fmt.Errorf("gemm: %s: ref backend computes on the host: %w (%w)", arg, err, gemm.ErrUnsupported)
	}
	return h, nil
}

func hostBF16MN(m *gemm.BF16MNMatrix, arg string) (gemm.BF16MNHost, error) {
	h, err := m.Host()
	if err != nil {
		return h, fmt.Errorf("gemm: %s: ref backend computes on the host: %w (%w)", arg, err, gemm.ErrUnsupported)
	}
	return h, nil
}

func hostBF16(m *gemm.BF16Matrix, arg string) (gemm.BF16Host, error) {
	h, err := m.Host()
	if err != nil {
		return h, fmt.Errorf("gemm: %s: ref backend computes on the host: %w (%w)", arg, err, gemm.ErrUnsupported)
	}
	return h, nil
}

func hostOut(d *gemm.Out) (gemm.OutHost, error) {
	h, err := d.Host()
	if err != nil {
		return h, fmt.Errorf("gemm: d: ref backend computes on the host: %w (%w)", err, gemm.ErrUnsupported)
	}
	return h, nil
}

// FP8GemmNN computes D = C + A·Bᵀ for K-major A and MN-major B (DeepGEMM
// fp8_gemm_nn) with GemmNT's arithmetic. It receives arguments gemm.FP8GemmNN
// validated. Errors: ctx's error, or ErrUnsupported for non-host storage.
func (*Backend) FP8GemmNN(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP8MNMatrix, dm *gemm.Out) error {
	a, err := hostK(am, "a")
	if err != nil {
		return err
	}
	b, err := hostMN(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	return literal(ctx, kSide(a), mnSide(b, 0, bm.K), am.K, d, 0, true, nil)
}

// FP8GemmTN computes D = C + A·Bᵀ for MN-major A and B (DeepGEMM
// fp8_gemm_tn). Errors: as FP8GemmNN.
func (*Backend) FP8GemmTN(ctx context.Context, am, bm *tensor.FP8MNMatrix, dm *gemm.Out) error {
	a, err := hostMN(am, "a")
	if err != nil {
		return err
	}
	b, err := hostMN(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	return literal(ctx, mnSide(a, 0, am.K), mnSide(b, 0, bm.K), am.K, d, 0, true, nil)
}

// FP8GemmTT computes D = C + A·Bᵀ for MN-major A and K-major B (DeepGEMM
// fp8_gemm_tt). Errors: as FP8GemmNN.
func (*Backend) FP8GemmTT(ctx context.Context, am *tensor.FP8MNMatrix, bm *tensor.FP8Matrix, dm *gemm.Out) error {
	a, err := hostMN(am, "a")
	if err != nil {
		return err
	}
	b, err := hostK(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	return literal(ctx, mnSide(a, 0, am.K), kSide(b), am.K, d, 0, true, nil)
}

// BF16GemmNN computes D = C + A·Bᵀ for BF16 K-major A and MN-major B with a
// float32 accumulator over all of K (DeepGEMM bf16_gemm_nn). Errors: as
// FP8GemmNN.
func (*Backend) BF16GemmNN(ctx context.Context, am *gemm.BF16Matrix, bm *gemm.BF16MNMatrix, dm *gemm.Out) error {
	a, err := hostBF16(am, "a")
	if err != nil {
		return err
	}
	b, err := hostBF16MN(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	return literal(ctx, bf16KSide(a, 0, am.Rows), bf16MNSide(b, 0), am.K, d, 0, false, nil)
}

// BF16GemmTN computes D = C + A·Bᵀ for BF16 MN-major A and B (DeepGEMM
// bf16_gemm_tn). Errors: as FP8GemmNN.
func (*Backend) BF16GemmTN(ctx context.Context, am, bm *gemm.BF16MNMatrix, dm *gemm.Out) error {
	a, err := hostBF16MN(am, "a")
	if err != nil {
		return err
	}
	b, err := hostBF16MN(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	return literal(ctx, bf16MNSide(a, 0), bf16MNSide(b, 0), am.K, d, 0, false, nil)
}

// BF16GemmTT computes D = C + A·Bᵀ for BF16 MN-major A and K-major B
// (DeepGEMM bf16_gemm_tt). Errors: as FP8GemmNN.
func (*Backend) BF16GemmTT(ctx context.Context, am *gemm.BF16MNMatrix, bm *gemm.BF16Matrix, dm *gemm.Out) error {
	a, err := hostBF16MN(am, "a")
	if err != nil {
		return err
	}
	b, err := hostBF16(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	return literal(ctx, bf16MNSide(a, 0), bf16KSide(b, 0, bm.Rows), am.K, d, 0, false, nil)
}

// KGroupedFP8GemmTNContiguous computes D[g] = C[g] + A_gᵀ·B_g for every
// group g of K range ks[g] (DeepGEMM k_grouped_fp8_gemm_tn_contiguous),
// with GemmNT's arithmetic over the group's K blocks. A group with K = 0
// gives D[g] = C[g] (or 0). It receives arguments
// gemm.KGroupedFP8GemmTNContiguous validated. Errors: as FP8GemmNN.
func (*Backend) KGroupedFP8GemmTNContiguous(ctx context.Context, am, bm *tensor.FP8MNMatrix, dm *gemm.Out, ks []int) error {
	a, err := hostMN(am, "a")
	if err != nil {
		return err
	}
	b, err := hostMN(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	k0 := 0
	for g, k := range ks {
		if err := literal(ctx, mnSide(a, k0, k), mnSide(b, k0, k), k, d, g*am.MN, true, nil); err != nil {
			return err
		}
		k0 += k
	}
	return nil
}

// groupSide is row block g of a group-blocked K-major k-grouped operand:
// its [rows, k] block starts at element rows·k0, its scales are columns
// [k0/128, (k0+k)/128) of the [rows, ΣK/128] scale matrix.
func groupSide(h tensor.FP8Host, k0, k int) side {
	base := h.Rows * k0
	return side{rows: h.Rows,
		fill: func(r int, dst []float32) {
			for i, v := range h.Data[base+r*k : base+(r+1)*k] {
				dst[i] = v.Float32()
			}
		},
		scale: func(r, kb int) float32 { return h.Scale(0, r, k0/tensor.ScaleBlock+kb) }}
}

// KGroupedFP8GemmNTContiguous computes D[g] = C[g] + A_g·B_gᵀ for the
// group-blocked K-major operands (DeepGEMM k_grouped_fp8_gemm_nt_contiguous).
// It receives arguments gemm.KGroupedFP8GemmNTContiguous validated.
// Errors: as FP8GemmNN.
func (*Backend) KGroupedFP8GemmNTContiguous(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, ks []int) error {
	a, err := hostK(am, "a")
	if err != nil {
		return err
	}
	b, err := hostK(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	k0 := 0
	for g, k := range ks {
		if err := literal(ctx, groupSide(a, k0, k), groupSide(b, k0, k), k, d, g*am.Rows, true, nil); err != nil {
			return err
		}
		k0 += k
	}
	return nil
}

// KGroupedBF16GemmTNContiguous computes D[g] = C[g] + A_gᵀ·B_g for BF16
// MN-major operands with a float32 accumulator over each group's K
// (DeepGEMM k_grouped_bf16_gemm_tn_contiguous). Errors: as FP8GemmNN.
func (*Backend) KGroupedBF16GemmTNContiguous(ctx context.Context, am, bm *gemm.BF16MNMatrix, dm *gemm.Out, ks []int) error {
	a, err := hostBF16MN(am, "a")
	if err != nil {
		return err
	}
	b, err := hostBF16MN(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	k0 := 0
	for g, k := range ks {
		if err := literal(ctx, bf16MNSide(a, k0), bf16MNSide(b, k0), k, d, g*am.MN, false, nil); err != nil {
			return err
		}
		k0 += k
	}
	return nil
}

// MGroupedBF16GemmNTContiguous computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ
// for rows with mIndices[m] ≥ 0 (DeepGEMM m_grouped_bf16_gemm_nt_contiguous);
// other rows are left untouched, or zeroed when d.ZeroUnused. Errors: as
// FP8GemmNN.
func (*Backend) MGroupedBF16GemmNTContiguous(ctx context.Context, am, bm *gemm.BF16Matrix, dm *gemm.Out, mIndices []int32) error {
	a, err := hostBF16(am, "a")
	if err != nil {
		return err
	}
	b, err := hostBF16(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	n := dm.Cols
	for m := 0; m < am.Rows; {
		g, e := mIndices[m], m+1
		for e < am.Rows && mIndices[e] == g {
			e++
		}
		if err := literal(ctx, bf16KSide(a, m, e-m), bf16KSide(b, max(int(g), 0)*n, n), am.K, d, m, false,
			func(int) bool { return g >= 0 }); err != nil {
			return err
		}
		m = e
	}
	return nil
}

// MGroupedBF16GemmNTMasked computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_bf16_gemm_nt_masked); other rows are left
// untouched, or zeroed when d.ZeroUnused. expectedM is ignored. Errors: as
// FP8GemmNN.
func (*Backend) MGroupedBF16GemmNTMasked(ctx context.Context, am, bm *gemm.BF16Matrix, dm *gemm.Out, maskedM []int32, expectedM int) error {
	a, err := hostBF16(am, "a")
	if err != nil {
		return err
	}
	b, err := hostBF16(bm, "b")
	if err != nil {
		return err
	}
	d, err := hostOut(dm)
	if err != nil {
		return err
	}
	n, mmax := dm.Cols, am.Rows/len(maskedM)
	for g, mm := range maskedM {
		if err := literal(ctx, bf16KSide(a, g*mmax, mmax), bf16KSide(b, g*n, n), am.K, d, g*mmax, false,
			func(m int) bool { return m < int(mm) }); err != nil {
			return err
		}
	}
	return nil
}
