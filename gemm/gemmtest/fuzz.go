package gemmtest

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Fuzz fuzzes the argument handling of b: operand dimensions, strides,
// slice lengths, scale granularity and format, group counts, mIndices and
// maskedM are drawn from the fuzzer's bytes, and every call must either
// succeed or return an error wrapping a gemm sentinel (or ErrUnsupported);
// it must never panic. A backend's test calls it from its own FuzzXxx.
func Fuzz(f *testing.F, b gemm.Backend) {
	f.Add([]byte{8, 16, 130, 0, 0, 1, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{129, 3, 7, 1, 1, 128, 1, 3, 5, 2, 1, 9})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		get := func(i int) int {
			if i < len(in) {
				return int(in[i])
			}
			return 0
		}
		m, n, k := get(0)%140, get(1)%70, get(2)%300
		g := get(7)%4 + 1
		fmtA, fmtB := tensor.ScaleFormat(get(3)%3), tensor.ScaleFormat(get(4)%3)
		sr := 1
		if get(5)%2 == 1 {
			sr = 128
		}
		lenDelta := get(6)%5 - 2
		mk := func(rows, groups int, f tensor.ScaleFormat, scaleRows, strideExtra int) *tensor.FP8Matrix {
			x := &tensor.FP8Matrix{Groups: groups, Rows: rows, K: k, ScaleRows: scaleRows, Format: f}
			if strideExtra > 0 {
				x.Stride = k + strideExtra
			}
			nd := groups * rows * x.RowStride()
			if nd+lenDelta >= 0 {
				nd += lenDelta
			}
			data := make([]tensor.E4M3, nd)
			for i := range data {
				data[i] = tensor.E4M3(0x38 + i%7)
			}
			x.Data = tensor.Host[tensor.E4M3](data)
			ns := 0
			if scaleRows > 0 {
				ns = groups * ((rows + scaleRows - 1) / scaleRows) * ((k + 127) / 128)
			}
			if get(8)%7 == 3 && ns > 0 {
				ns--
			}
			sf := make([]float32, ns)
			for i := range sf {
				sf[i] = 0.5
			}
			x.ScalesF32 = tensor.Host[float32](sf)
			su := make([]tensor.UE8M0, ns)
			for i := range su {
				su[i] = 126
			}
			x.ScalesUE8M0 = tensor.Host[tensor.UE8M0](su)
			return x
		}
		a := mk(m, 1, fmtA, 1, get(9)%3)
		bm := mk(n, 1, fmtB, sr, 0)
		bg := mk(n, g, fmtB, sr, 0)
		ag := mk(m, g, fmtA, 1, 0)
		d := oracle.NewOut(m, n, get(10)%3, get(11)%2 == 0, 0)
		if get(10)%5 == 4 {
			d.C = tensor.Host[float32](make([]float32, tensor.StorageLen(d.F32)+tensor.StorageLen(d.BF16)))
		}
		ctx := context.Background()
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var ae *gemm.ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("%s: error %v is not a *gemm.ArgError", what, err)
			}
			if !errors.Is(err, gemm.ErrShape) && !errors.Is(err, gemm.ErrScales) && !errors.Is(err, gemm.ErrIndices) && !errors.Is(err, gemm.ErrUnsupported) {
				t.Fatalf("%s: error %v wraps no sentinel", what, err)
			}
		}
		check("GemmNT", gemm.FP8GemmNT(ctx, b, a, bm, d))
		idx := make([]int32, m)
		for i := range idx {
			idx[i] = int32(get(12+i/128)%(g+2)) - 1
		}
		check("GroupedContiguousNT", gemm.GroupedContiguousNT(ctx, b, a, bg, d, idx))
		mm := make([]int32, g)
		for i := range mm {
			mm[i] = int32(get(16+i) % (m + 2))
		}
		dm := oracle.NewOut(g*m, n, 0, true, 0)
		check("GroupedMaskedNT", gemm.GroupedMaskedNT(ctx, b, ag, bg, dm, mm, get(20)))
		ba := &gemm.BF16Matrix{Rows: m, K: k, Data: tensor.HostOf(make([]tensor.BF16, max(0, m*k+lenDelta)))}
		bb := &gemm.BF16Matrix{Rows: n, K: k, Data: tensor.HostOf(make([]tensor.BF16, n*k))}
		check("BF16GemmNT", gemm.BF16GemmNT(ctx, b, ba, bb, d))
	})
}
