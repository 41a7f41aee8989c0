package cpu

import (
	"context"
	"fmt"
	"sync"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The training calls (gemm.TrainingBackend) reuse the packed NT kernels:
// an MN-major operand is transposed to K-major once per call (or per group
// of a k-grouped call), which costs O((M+N)·K) byte moves against the
// GEMM's O(M·N·K) FLOPs, and the grouped BF16 calls run the dense BF16
// path on each group's rows. Results are bit-identical to the NT call on
// the transposed operands.

var _ gemm.TrainingBackend = (*Backend)(nil)

func notHost(arg string, err error) error {
	return fmt.Errorf("gemm: %s: cpu backend computes on the host: %w (%w)", arg, err, gemm.ErrUnsupported)
}

// scratch pools the K-major copies of MN-major operands between calls, so
// that a training call does not page in and zero a fresh buffer of the
// operand's size every time.
var (
	e4m3Pool sync.Pool // *[]tensor.E4M3
	bf16Pool sync.Pool // *[]tensor.BF16
)

func getBuf[T any](p *sync.Pool, n int) *[]T {
	if v, ok := p.Get().(*[]T); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]T, n)
	return &s
}

// kMajor returns m as a K-major per-row-scaled operand [MN, K] whose data
// lives in a pooled buffer (give it back with the returned release).
func kMajor(m *tensor.FP8MNMatrix, arg string) (*tensor.FP8Matrix, func(), error) {
	h, err := m.Host()
	if err != nil {
		return nil, nil, notHost(arg, err)
	}
	buf := getBuf[tensor.E4M3](&e4m3Pool, m.MN*m.K)
	if m.MN*m.K > 0 {
		tensor.TransposeInto(*buf, m.K, h.Data, m.RowStride(), m.K, m.MN)
	}
	out := &tensor.FP8Matrix{Groups: 1, Rows: m.MN, K: m.K, ScaleRows: m.ScaleMN, Format: m.Format, Data: tensor.HostOf(*buf)}
	sc, kbs := m.ScaleCols(), m.KBlocks()
	if m.Format == tensor.ScaleUE8M0 {
		s := make([]tensor.UE8M0, sc*kbs)
		tensor.TransposeInto(s, kbs, h.ScalesUE8M0, sc, kbs, sc)
		out.ScalesUE8M0 = tensor.HostOf(s)
	} else {
		s := make([]float32, sc*kbs)
		tensor.TransposeInto(s, kbs, h.ScalesF32, sc, kbs, sc)
		out.ScalesF32 = tensor.HostOf(s)
	}
	return out, func() { e4m3Pool.Put(buf) }, nil
}

// bf16KMajor returns the MN-major BF16 rows [k0, k0+k) of m as a K-major
// BF16Matrix [MN, k], written into buf (grown as needed).
func bf16KMajor(h gemm.BF16MNHost, k0, k int, buf *[]tensor.BF16) *gemm.BF16Matrix {
	n := h.MN * k
	if cap(*buf) < n {
		*buf = make([]tensor.BF16, n)
	}
	*buf = (*buf)[:n]
	dst := *buf
	if n > 0 {
		tensor.TransposeInto(dst, k, h.Data[k0*h.RowStride():], h.RowStride(), k, h.MN)
	}
	return &gemm.BF16Matrix{Rows: h.MN, K: k, Data: tensor.HostOf(dst)}
}

func bf16MNHost(m *gemm.BF16MNMatrix, arg string) (gemm.BF16MNHost, error) {
	h, err := m.Host()
	if err != nil {
		return h, notHost(arg, err)
	}
	return h, nil
}

// FP8GemmNN computes D = C + A·Bᵀ for K-major A and MN-major B (DeepGEMM
// fp8_gemm_nn): B is transposed to K-major, then GemmNT runs. It receives
// arguments gemm.FP8GemmNN validated. Errors: ctx's error, ErrUnsupported
// for non-host storage.
func (b *Backend) FP8GemmNN(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP8MNMatrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	bk, release, err := kMajor(bm, "b")
	if err != nil {
		return err
	}
	defer release()
	return b.GemmNT(ctx, am, bk, dm)
}

// FP8GemmTN computes D = C + A·Bᵀ for MN-major A and B (DeepGEMM
// fp8_gemm_tn). Errors: as FP8GemmNN.
func (b *Backend) FP8GemmTN(ctx context.Context, am, bm *tensor.FP8MNMatrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	ak, releaseA, err := kMajor(am, "a")
	if err != nil {
		return err
	}
	defer releaseA()
	bk, releaseB, err := kMajor(bm, "b")
	if err != nil {
		return err
	}
	defer releaseB()
	return b.GemmNT(ctx, ak, bk, dm)
}

// FP8GemmTT computes D = C + A·Bᵀ for MN-major A and K-major B (DeepGEMM
// fp8_gemm_tt). Errors: as FP8GemmNN.
func (b *Backend) FP8GemmTT(ctx context.Context, am *tensor.FP8MNMatrix, bm *tensor.FP8Matrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	ak, release, err := kMajor(am, "a")
	if err != nil {
		return err
	}
	defer release()
	return b.GemmNT(ctx, ak, bm, dm)
}

// BF16GemmNN computes D = C + A·Bᵀ for BF16 K-major A and MN-major B
// (DeepGEMM bf16_gemm_nn). Errors: as FP8GemmNN.
func (b *Backend) BF16GemmNN(ctx context.Context, am *gemm.BF16Matrix, bm *gemm.BF16MNMatrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	bh, err := bf16MNHost(bm, "b")
	if err != nil {
		return err
	}
	buf := getBuf[tensor.BF16](&bf16Pool, 0)
	defer bf16Pool.Put(buf)
	return b.BF16GemmNT(ctx, am, bf16KMajor(bh, 0, bm.K, buf), dm)
}

// BF16GemmTN computes D = C + A·Bᵀ for BF16 MN-major A and B (DeepGEMM
// bf16_gemm_tn). Errors: as FP8GemmNN.
func (b *Backend) BF16GemmTN(ctx context.Context, am, bm *gemm.BF16MNMatrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	ah, err := bf16MNHost(am, "a")
	if err != nil {
		return err
	}
	bh, err := bf16MNHost(bm, "b")
	if err != nil {
		return err
	}
	ba, bb := getBuf[tensor.BF16](&bf16Pool, 0), getBuf[tensor.BF16](&bf16Pool, 0)
	defer bf16Pool.Put(ba)
	defer bf16Pool.Put(bb)
	return b.BF16GemmNT(ctx, bf16KMajor(ah, 0, am.K, ba), bf16KMajor(bh, 0, bm.K, bb), dm)
}

// BF16GemmTT computes D = C + A·Bᵀ for BF16 MN-major A and K-major B
// (DeepGEMM bf16_gemm_tt). Errors: as FP8GemmNN.
func (b *Backend) BF16GemmTT(ctx context.Context, am *gemm.BF16MNMatrix, bm *gemm.BF16Matrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	ah, err := bf16MNHost(am, "a")
	if err != nil {
		return err
	}
	buf := getBuf[tensor.BF16](&bf16Pool, 0)
	defer bf16Pool.Put(buf)
	return b.BF16GemmNT(ctx, bf16KMajor(ah, 0, am.K, buf), bm, dm)
}

// subOut is rows [r0, r0+rows) of d as an Out of its own (same stride,
// dtype and C).
func subOut(d gemm.OutHost, r0, rows int) *gemm.Out {
	off := r0 * d.RowStride()
	o := &gemm.Out{Rows: rows, Cols: d.Cols, Stride: d.Stride, ZeroUnused: d.ZeroUnused}
	if d.F32 != nil {
		o.F32 = tensor.HostOf(d.F32[off:])
	} else {
		o.BF16 = tensor.HostOf(d.BF16[off:])
	}
	if d.C != nil {
		o.C = tensor.HostOf(d.C[off:])
	}
	return o
}

// eachKGroup is the loop of the k-grouped calls: for every group g of ks
// it checks ctx, then runs fn on the group's K range [k0, k0+k) into D[g]
// (rows [g·rows, (g+1)·rows) of d), or writes D[g] = C[g] (or 0) for a
// group with K = 0. It returns the first error.
func eachKGroup(ctx context.Context, d gemm.OutHost, rows int, ks []int, fn func(k0, k int, dg *gemm.Out) error) error {
	k0 := 0
	for g, k := range ks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if k == 0 {
			emptyGroup(d, g*rows, rows)
			continue
		}
		if err := fn(k0, k, subOut(d, g*rows, rows)); err != nil {
			return err
		}
		k0 += k
	}
	return nil
}

// emptyGroup writes D[g] = C[g] (or 0) for a group with K = 0.
func emptyGroup(d gemm.OutHost, r0, rows int) {
	for r := r0; r < r0+rows; r++ {
		off := r * d.RowStride()
		if d.C != nil {
			copy(d.F32[off:off+d.Cols], d.C[off:off+d.Cols])
		} else {
			clear(d.F32[off : off+d.Cols])
		}
	}
}

// mnGroup transposes rows [k0, k0+k) of the MN-major FP8 operand h (with
// per-channel scales) into a K-major [MN, k] operand with per-token scales,
// reusing data and sf.
func mnGroup(h tensor.FP8MNHost, k0, k int, data *[]tensor.E4M3, sf *[]float32, su *[]tensor.UE8M0) *tensor.FP8Matrix {
	mn, st := h.MN, h.RowStride()
	m := &tensor.FP8Matrix{Groups: 1, Rows: mn, K: k, ScaleRows: 1, Format: h.Format}
	n := mn * k
	if cap(*data) < n {
		*data = make([]tensor.E4M3, n)
	}
	tensor.TransposeInto((*data)[:n], k, h.Data[k0*st:], st, k, mn)
	m.Data = tensor.HostOf((*data)[:n])
	kb0, kbs := k0/tensor.ScaleBlock, k/tensor.ScaleBlock
	if h.Format == tensor.ScaleUE8M0 {
		if cap(*su) < mn*kbs {
			*su = make([]tensor.UE8M0, mn*kbs)
		}
		tensor.TransposeInto((*su)[:mn*kbs], kbs, h.ScalesUE8M0[kb0*mn:], mn, kbs, mn)
		m.ScalesUE8M0 = tensor.HostOf((*su)[:mn*kbs])
	} else {
		if cap(*sf) < mn*kbs {
			*sf = make([]float32, mn*kbs)
		}
		tensor.TransposeInto((*sf)[:mn*kbs], kbs, h.ScalesF32[kb0*mn:], mn, kbs, mn)
		m.ScalesF32 = tensor.HostOf((*sf)[:mn*kbs])
	}
	return m
}

// KGroupedFP8GemmTNContiguous computes D[g] = C[g] + A_gᵀ·B_g for every
// group of K range ks[g] (DeepGEMM k_grouped_fp8_gemm_tn_contiguous): each
// group's A_g and B_g are transposed to K-major per-token operands and
// GemmNT runs on them into D[g]. A group with K = 0 gives D[g] = C[g] (or
// 0). It receives arguments gemm.KGroupedFP8GemmTNContiguous validated.
// Errors: ctx's error, ErrUnsupported for non-host storage.
func (b *Backend) KGroupedFP8GemmTNContiguous(ctx context.Context, am, bm *tensor.FP8MNMatrix, dm *gemm.Out, ks []int) error {
	if b.err != nil {
		return b.err
	}
	ah, err := am.Host()
	if err != nil {
		return notHost("a", err)
	}
	bh, err := bm.Host()
	if err != nil {
		return notHost("b", err)
	}
	d, err := dm.Host()
	if err != nil {
		return notHost("d", err)
	}
	ad, bd := getBuf[tensor.E4M3](&e4m3Pool, 0), getBuf[tensor.E4M3](&e4m3Pool, 0)
	defer e4m3Pool.Put(ad)
	defer e4m3Pool.Put(bd)
	var as, bs []float32
	var au, bu []tensor.UE8M0
	return eachKGroup(ctx, d, am.MN, ks, func(k0, k int, dg *gemm.Out) error {
		return b.GemmNT(ctx, mnGroup(ah, k0, k, ad, &as, &au), mnGroup(bh, k0, k, bd, &bs, &bu), dg)
	})
}

// kGroup is group block g of a group-blocked K-major operand h (rows ×
// ΣK, Data group after group): a view of its data and a copy of its scale
// columns into sf/su.
func kGroup(h tensor.FP8Host, k0, k int, sf *[]float32, su *[]tensor.UE8M0) *tensor.FP8Matrix {
	rows := h.Rows
	m := &tensor.FP8Matrix{Groups: 1, Rows: rows, K: k, ScaleRows: 1, Format: h.Format,
		Data: tensor.HostOf(h.Data[rows*k0 : rows*(k0+k)])}
	kb0, kbs, all := k0/tensor.ScaleBlock, k/tensor.ScaleBlock, h.KBlocks()
	if h.Format == tensor.ScaleUE8M0 {
		if cap(*su) < rows*kbs {
			*su = make([]tensor.UE8M0, rows*kbs)
		}
		s := (*su)[:rows*kbs]
		for r := 0; r < rows; r++ {
			copy(s[r*kbs:(r+1)*kbs], h.ScalesUE8M0[r*all+kb0:])
		}
		m.ScalesUE8M0 = tensor.HostOf(s)
	} else {
		if cap(*sf) < rows*kbs {
			*sf = make([]float32, rows*kbs)
		}
		s := (*sf)[:rows*kbs]
		for r := 0; r < rows; r++ {
			copy(s[r*kbs:(r+1)*kbs], h.ScalesF32[r*all+kb0:])
		}
		m.ScalesF32 = tensor.HostOf(s)
	}
	return m
}

// KGroupedFP8GemmNTContiguous computes D[g] = C[g] + A_g·B_gᵀ for the
// group-blocked K-major operands (DeepGEMM k_grouped_fp8_gemm_nt_contiguous):
// each group's data is used in place, its scale columns are gathered, and
// GemmNT runs into D[g]. Errors: as KGroupedFP8GemmTNContiguous.
func (b *Backend) KGroupedFP8GemmNTContiguous(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, ks []int) error {
	if b.err != nil {
		return b.err
	}
	ah, err := am.Host()
	if err != nil {
		return notHost("a", err)
	}
	bh, err := bm.Host()
	if err != nil {
		return notHost("b", err)
	}
	d, err := dm.Host()
	if err != nil {
		return notHost("d", err)
	}
	var as, bs []float32
	var au, bu []tensor.UE8M0
	return eachKGroup(ctx, d, am.Rows, ks, func(k0, k int, dg *gemm.Out) error {
		return b.GemmNT(ctx, kGroup(ah, k0, k, &as, &au), kGroup(bh, k0, k, &bs, &bu), dg)
	})
}

// KGroupedBF16GemmTNContiguous computes D[g] = C[g] + A_gᵀ·B_g for BF16
// MN-major operands (DeepGEMM k_grouped_bf16_gemm_tn_contiguous): each
// group is transposed to K-major and BF16GemmNT runs into D[g]. Errors: as
// KGroupedFP8GemmTNContiguous.
func (b *Backend) KGroupedBF16GemmTNContiguous(ctx context.Context, am, bm *gemm.BF16MNMatrix, dm *gemm.Out, ks []int) error {
	if b.err != nil {
		return b.err
	}
	ah, err := bf16MNHost(am, "a")
	if err != nil {
		return err
	}
	bh, err := bf16MNHost(bm, "b")
	if err != nil {
		return err
	}
	d, err := dm.Host()
	if err != nil {
		return notHost("d", err)
	}
	ba, bb := getBuf[tensor.BF16](&bf16Pool, 0), getBuf[tensor.BF16](&bf16Pool, 0)
	defer bf16Pool.Put(ba)
	defer bf16Pool.Put(bb)
	return eachKGroup(ctx, d, am.MN, ks, func(k0, k int, dg *gemm.Out) error {
		return b.BF16GemmNT(ctx, bf16KMajor(ah, k0, k, ba), bf16KMajor(bh, k0, k, bb), dg)
	})
}

// bf16Rows is rows [r0, r0+rows) of h as a BF16Matrix view.
func bf16Rows(h gemm.BF16Host, r0, rows int) *gemm.BF16Matrix {
	return &gemm.BF16Matrix{Rows: rows, K: h.K, Stride: h.RowStride(), Data: tensor.HostOf(h.Data[min(r0*h.RowStride(), len(h.Data)):])}
}

// MGroupedBF16GemmNTContiguous computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ
// for rows with mIndices[m] ≥ 0 (DeepGEMM m_grouped_bf16_gemm_nt_contiguous):
// every run of rows of one group is a dense BF16 GEMM against that group's
// B; rows with −1 are left untouched or, with d.ZeroUnused, zeroed. Errors:
// ctx's error, ErrUnsupported for non-host storage.
func (b *Backend) MGroupedBF16GemmNTContiguous(ctx context.Context, am, bm *gemm.BF16Matrix, dm *gemm.Out, mIndices []int32) error {
	if b.err != nil {
		return b.err
	}
	a, bh, d, err := gemm.HostBF16("cpu", am, bm, dm)
	if err != nil {
		return err
	}
	n := dm.Cols
	for m := 0; m < len(mIndices); {
		g := mIndices[m]
		e := m + 1
		for e < len(mIndices) && mIndices[e] == g {
			e++
		}
		if g >= 0 {
			if err := b.BF16GemmNT(ctx, bf16Rows(a, m, e-m), bf16Rows(bh, int(g)*n, n), subOut(d, m, e-m)); err != nil {
				return err
			}
		} else if d.ZeroUnused {
			zeroRows(d, m, e)
		}
		m = e
	}
	return nil
}

// MGroupedBF16GemmNTMasked computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_bf16_gemm_nt_masked); other rows are left
// untouched or, with d.ZeroUnused, zeroed; expectedM is not needed.
// Errors: as MGroupedBF16GemmNTContiguous.
func (b *Backend) MGroupedBF16GemmNTMasked(ctx context.Context, am, bm *gemm.BF16Matrix, dm *gemm.Out, maskedM []int32, expectedM int) error {
	if b.err != nil {
		return b.err
	}
	a, bh, d, err := gemm.HostBF16("cpu", am, bm, dm)
	if err != nil {
		return err
	}
	n, mmax := dm.Cols, am.Rows/len(maskedM)
	for g, mm := range maskedM {
		if mm > 0 {
			if err := b.BF16GemmNT(ctx, bf16Rows(a, g*mmax, int(mm)), bf16Rows(bh, g*n, n), subOut(d, g*mmax, int(mm))); err != nil {
				return err
			}
		}
		if d.ZeroUnused && int(mm) < mmax {
			zeroRows(d, g*mmax+int(mm), (g+1)*mmax)
		}
	}
	return nil
}
