package gemmtest

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// FuzzTraining fuzzes the argument handling of b's training calls: the
// dimensions, strides, slice lengths, scale granularity and format of
// MN-major and K-major operands, the ks list, mIndices and maskedM are
// drawn from the fuzzer's bytes, and every front function must either
// succeed or return an error wrapping a gemm sentinel; it must never
// panic. A backend's test calls it from its own FuzzXxx.
func FuzzTraining(f *testing.F, b gemm.Backend) {
	f.Add([]byte{8, 16, 2, 0, 0, 1, 2, 1, 1, 0, 0, 0})
	f.Add([]byte{3, 5, 1, 1, 1, 0, 1, 0, 3, 2, 1, 9})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		get := func(i int) int {
			if i < len(in) {
				return int(in[i])
			}
			return 0
		}
		m, n := get(0)%40, get(1)%40
		g := get(2)%3 + 1
		fa, fb := tensor.ScaleFormat(get(3)%3), tensor.ScaleFormat(get(4)%3)
		smn := 1
		if get(5)%3 == 1 {
			smn = 128
		}
		delta := get(6)%5 - 2
		ks := make([]int, g)
		sum := 0
		for i := range ks {
			ks[i] = (get(7+i) % 3) * 128
			if get(10)%11 == 5 {
				ks[i] += get(11) % 7
			}
			sum += ks[i]
		}
		k := sum
		if get(10)%13 == 7 {
			k += 128
		}
		mn := func(rows int, f tensor.ScaleFormat) *tensor.FP8MNMatrix {
			x := &tensor.FP8MNMatrix{MN: rows, K: k, ScaleMN: smn, Format: f}
			nd := max(rows*k+delta, 0)
			x.Data = tensor.Host[tensor.E4M3](make([]tensor.E4M3, nd))
			ns := 0
			if smn > 0 {
				ns = ((k + 127) / 128) * ((rows + smn - 1) / smn)
			}
			sf, su := make([]float32, ns), make([]tensor.UE8M0, ns)
			for i := range sf {
				sf[i], su[i] = 1, 127
			}
			x.ScalesF32, x.ScalesUE8M0 = tensor.Host[float32](sf), tensor.Host[tensor.UE8M0](su)
			return x
		}
		km := func(rows int, f tensor.ScaleFormat) *tensor.FP8Matrix {
			x := &tensor.FP8Matrix{Rows: rows, K: k, ScaleRows: smn, Format: f}
			x.Data = tensor.Host[tensor.E4M3](make([]tensor.E4M3, max(rows*k+delta, 0)))
			ns := ((k + 127) / 128) * ((rows + smn - 1) / smn)
			sf, su := make([]float32, ns), make([]tensor.UE8M0, ns)
			for i := range sf {
				sf[i], su[i] = 1, 127
			}
			x.ScalesF32, x.ScalesUE8M0 = tensor.Host[float32](sf), tensor.Host[tensor.UE8M0](su)
			return x
		}
		bmn := func(rows int) *gemm.BF16MNMatrix {
			return &gemm.BF16MNMatrix{MN: rows, K: k, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, max(rows*k+delta, 0)))}
		}
		bk := func(rows int) *gemm.BF16Matrix {
			return &gemm.BF16Matrix{Rows: rows, K: k, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, max(rows*k+delta, 0)))}
		}
		out := func(rows int, f32 bool) *gemm.Out {
			o := &gemm.Out{Rows: rows, Cols: n}
			if get(11)%5 == 2 {
				o.Rows++
			}
			if f32 {
				o.F32 = tensor.Host[float32](make([]float32, rows*n))
			} else {
				o.BF16 = tensor.Host[tensor.BF16](make([]tensor.BF16, rows*n))
			}
			return o
		}
		idx := make([]int32, m)
		for i := range idx {
			idx[i] = int32(get(12+i%4)%(g+2)) - 1
		}
		masked := make([]int32, g)
		for i := range masked {
			masked[i] = int32(get(16+i) % (m + 2))
		}
		ctx := context.Background()
		f32 := get(9)%2 == 0
		calls := []func() error{
			func() error { return gemm.FP8GemmNN(ctx, b, km(m, fa), mn(n, fb), out(m, f32)) },
			func() error { return gemm.FP8GemmTN(ctx, b, mn(m, fa), mn(n, fb), out(m, f32)) },
			func() error { return gemm.FP8GemmTT(ctx, b, mn(m, fa), km(n, fb), out(m, f32)) },
			func() error { return gemm.BF16GemmNN(ctx, b, bk(m), bmn(n), out(m, f32)) },
			func() error { return gemm.BF16GemmTN(ctx, b, bmn(m), bmn(n), out(m, f32)) },
			func() error { return gemm.BF16GemmTT(ctx, b, bmn(m), bk(n), out(m, f32)) },
			func() error { return gemm.KGroupedFP8GemmTNContiguous(ctx, b, mn(m, fa), mn(n, fb), out(g*m, f32), ks) },
			func() error { return gemm.KGroupedFP8GemmNTContiguous(ctx, b, km(m, fa), km(n, fb), out(g*m, f32), ks) },
			func() error { return gemm.KGroupedBF16GemmTNContiguous(ctx, b, bmn(m), bmn(n), out(g*m, f32), ks) },
			func() error { return gemm.MGroupedBF16GemmNTContiguous(ctx, b, bk(m), bk(g*n), out(m, f32), idx) },
			func() error { return gemm.MGroupedBF16GemmNTMasked(ctx, b, bk(g*m), bk(g*n), out(g*m, f32), masked, m) },
		}
		for i, call := range calls {
			err := call()
			if err == nil {
				continue
			}
			if !errors.Is(err, gemm.ErrShape) && !errors.Is(err, gemm.ErrScales) && !errors.Is(err, gemm.ErrIndices) && !errors.Is(err, gemm.ErrUnsupported) {
				t.Fatalf("call %d: error %v wraps no gemm sentinel", i, err)
			}
		}
	})
}
