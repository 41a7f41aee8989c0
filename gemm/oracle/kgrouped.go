package oracle

import (
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// KGroupedProblem is a k-grouped weight-gradient problem: X [ΣK, M] and Y
// [ΣK, N] (the stored MN-major operands, randn rounded to BF16), C [G·M, N]
// = randn·32, quantized per channel (A, B) and as the K-major
// group-blocked operands of the NT form (ANT, BNT).
type KGroupedProblem struct {
	G, M, N  int
	Ks       []int
	X, Y, C  []float32
	A, B     *tensor.FP8MNMatrix
	ANT, BNT *tensor.FP8Matrix
}

// NewKGroupedProblem draws a KGroupedProblem from seed with the given ks
// (multiples of 128). It panics on bad ks (a caller bug).
func NewKGroupedProblem(seed uint64, m, n int, ks []int, opt tensor.QuantOptions) *KGroupedProblem {
	r := testutil.RNG(seed)
	sum := 0
	for _, k := range ks {
		sum += k
	}
	p := &KGroupedProblem{G: len(ks), M: m, N: n, Ks: ks}
	p.X, p.Y = Randn(r, sum*m), Randn(r, sum*n)
	p.C = testutil.Normal(r, len(ks)*m*n, 0, 32)
	var err error
	if p.A, err = tensor.QuantizePerChannel(p.X, sum, m, opt); err != nil {
		panic(err)
	}
	if p.B, err = tensor.QuantizePerChannel(p.Y, sum, n, opt); err != nil {
		panic(err)
	}
	p.ANT, p.BNT = groupBlocked(p.A, ks), groupBlocked(p.B, ks)
	return p
}

// groupBlocked converts an MN-major per-channel operand [ΣK, MN] to the
// K-major group-blocked layout of KGroupedFP8GemmNTContiguous.
func groupBlocked(m *tensor.FP8MNMatrix, ks []int) *tensor.FP8Matrix {
	h, err := m.Host()
	if err != nil {
		panic(err)
	}
	mn, sum := m.MN, m.K
	data := make([]tensor.E4M3, mn*sum)
	k0 := 0
	for _, k := range ks {
		if k > 0 && mn > 0 {
			tensor.TransposeInto(data[mn*k0:], k, h.Data[k0*mn:], mn, k, mn)
		}
		k0 += k
	}
	out := &tensor.FP8Matrix{Groups: 1, Rows: mn, K: sum, ScaleRows: 1, Format: m.Format, Data: tensor.Host[tensor.E4M3](data)}
	kbs := m.KBlocks()
	if m.Format == tensor.ScaleUE8M0 {
		out.ScalesUE8M0 = tensor.Host[tensor.UE8M0](Transposed(h.ScalesUE8M0, kbs, mn))
	} else {
		out.ScalesF32 = tensor.Host[float32](Transposed(h.ScalesF32, kbs, mn))
	}
	return out
}

// KGroupedWant returns the float64 D [G·M, N] = C[g] + x_gᵀ·y_g of x
// [ΣK, M] and y [ΣK, N] (row-major, as stored).
func KGroupedWant(x, y, c []float32, m, n int, ks []int) []float64 {
	out := make([]float64, 0, len(ks)*m*n)
	k0 := 0
	for g, k := range ks {
		part := MatMulNT64(Transposed(x[k0*m:(k0+k)*m], k, m), Transposed(y[k0*n:(k0+k)*n], k, n), m, n, k)
		for i := range part {
			part[i] += float64(c[g*m*n+i])
		}
		out = append(out, part...)
		k0 += k
	}
	return out
}

// Transposed returns x [rows, cols] (row-major) transposed to [cols, rows].
func Transposed[T any](x []T, rows, cols int) []T {
	out := make([]T, len(x))
	if len(x) > 0 {
		tensor.TransposeInto(out, rows, x, cols, rows, cols)
	}
	return out
}
