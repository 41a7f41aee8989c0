package gemmtest

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// fp4BadCase is one malformed FP8×FP4 call, the sentinel its error must
// wrap and the argument it must name.
type fp4BadCase struct {
	name, arg string
	want      error
	call      func(b gemm.Backend) error
}

func cloneFP4(m *tensor.FP4Matrix) *tensor.FP4Matrix { c := *m; return &c }

func fp4BadCases() []fp4BadCase {
	p := oracle.NewFP4Problem(2000, oracle.Shape{M: 8, N: 200, K: 300}, 32, tensor.QuantOptions{})
	ctx := context.Background()
	out := func() *gemm.Out { return oracle.NewOut(8, 200, 0, false, 0) }
	dense := func(mod func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out)) func(gemm.Backend) error {
		return func(be gemm.Backend) error {
			a, b, d := clone(p.A), cloneFP4(p.B), out()
			mod(a, b, d)
			return gemm.FP8FP4GemmNT(ctx, be, a, b, d)
		}
	}
	ga, _ := tensor.QuantizePerToken(oracle.Randn(testRNG(), 256*300), 256, 300, tensor.QuantOptions{})
	gb := stackFP4([]*tensor.FP4Matrix{p.B, p.B})
	idx := func() []int32 {
		x := make([]int32, 256)
		for i := 128; i < 256; i++ {
			x[i] = 1
		}
		return x
	}
	contig := func(mod func(ix []int32, b *tensor.FP4Matrix) []int32) func(gemm.Backend) error {
		return func(be gemm.Backend) error {
			b := cloneFP4(gb)
			ix := mod(idx(), b)
			return gemm.FP8FP4GroupedContiguousNT(ctx, be, ga, b, oracle.NewOut(256, 200, 0, false, 0), ix)
		}
	}
	ma, _ := tensor.Stack(p.A, p.A)
	masked := func(mm []int32, exp int, mod func(a *tensor.FP8Matrix, b *tensor.FP4Matrix)) func(gemm.Backend) error {
		return func(be gemm.Backend) error {
			a, b := clone(ma), cloneFP4(gb)
			if mod != nil {
				mod(a, b)
			}
			return gemm.FP8FP4GroupedMaskedNT(ctx, be, a, b, oracle.NewOut(16, 200, 0, false, 0), mm, exp)
		}
	}
	type ab = func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out)
	return []fp4BadCase{
		{"K mismatch", "b.K", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) {
			b.K = 298
			b.ScalesF32 = trim(b.ScalesF32, b.Rows*b.KBlocks())
		})},
		{"odd K", "b.K", gemm.ErrShape, dense(ab(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.K = 299 }))},
		{"B data short", "b.Data", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.Data = trim(b.Data, b.Data.Len()-1) })},
		{"B stride below K/2", "b.Stride", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.Stride = 149 })},
		{"B negative rows", "b", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.Rows = -1 })},
		{"B scales short", "b.ScalesF32", gemm.ErrScales, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) {
			b.ScalesF32 = trim(b.ScalesF32, b.ScalesF32.Len()-1)
		})},
		{"B ScaleK", "b.ScaleK", gemm.ErrScales, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.ScaleK = 16 })},
		{"B scale format", "b.Format", gemm.ErrScales, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.Format = 9 })},
		{"B UE8M0 missing", "b.ScalesUE8M0", gemm.ErrScales, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.Format = tensor.ScaleUE8M0 })},
		{"B with groups", "b.Groups", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { b.Groups = 2 })},
		{"A per-block scales", "a.ScaleRows", gemm.ErrScales, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) {
			a.ScaleRows = tensor.ScaleBlock
			a.ScalesF32 = trim(a.ScalesF32, a.KBlocks())
		})},
		{"A data short", "a.Data", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { a.Data = trim(a.Data, 5) })},
		{"A scales short", "a.ScalesF32", gemm.ErrScales, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { a.ScalesF32 = trim(a.ScalesF32, 1) })},
		{"D shape", "d", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { d.Cols = 199 })},
		{"D short", "d.BF16", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) { d.BF16 = trim(d.BF16, 100) })},
		{"D two buffers", "d", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) {
			d.F32 = tensor.Host[float32](make([]float32, 1600))
		})},
		{"C short", "d.C", gemm.ErrShape, dense(func(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *gemm.Out) {
			d.C = tensor.Host[float32](make([]float32, 5))
		})},
		{"nil A", "a", gemm.ErrShape, func(be gemm.Backend) error { return gemm.FP8FP4GemmNT(ctx, be, nil, p.B, out()) }},
		{"nil B", "b", gemm.ErrShape, func(be gemm.Backend) error { return gemm.FP8FP4GemmNT(ctx, be, p.A, nil, out()) }},
		{"nil D", "d", gemm.ErrShape, func(be gemm.Backend) error { return gemm.FP8FP4GemmNT(ctx, be, p.A, p.B, nil) }},
		{"nil backend", "be", gemm.ErrUnsupported, func(gemm.Backend) error { return gemm.FP8FP4GemmNT(ctx, nil, p.A, p.B, out()) }},
		{"backend without FP4", "be", gemm.ErrUnsupported, func(be gemm.Backend) error {
			return gemm.FP8FP4GemmNT(ctx, fp8Only{be}, p.A, p.B, out())
		}},
		{"mIndices length", "mIndices", gemm.ErrShape, contig(func(ix []int32, b *tensor.FP4Matrix) []int32 { return ix[:255] })},
		{"mIndices out of range", "mIndices[128]", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP4Matrix) []int32 {
			for i := 128; i < 256; i++ {
				ix[i] = 2
			}
			return ix
		})},
		{"mIndices not constant in block", "mIndices[200]", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP4Matrix) []int32 { ix[200] = 0; return ix })},
		{"mIndices padding inside block", "mIndices[6]", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP4Matrix) []int32 { ix[5] = -1; return ix })},
		{"contiguous B scales", "b.ScalesF32", gemm.ErrScales, contig(func(ix []int32, b *tensor.FP4Matrix) []int32 {
			b.ScalesF32 = trim(b.ScalesF32, b.ScalesF32.Len()/2)
			return ix
		})},
		{"maskedM above Mmax", "maskedM[1]", gemm.ErrIndices, masked([]int32{8, 9}, 4, nil)},
		{"maskedM negative", "maskedM[0]", gemm.ErrIndices, masked([]int32{-1, 0}, 4, nil)},
		{"maskedM length", "maskedM", gemm.ErrShape, masked([]int32{1}, 4, nil)},
		{"expectedM negative", "expectedM", gemm.ErrIndices, masked([]int32{1, 1}, -1, nil)},
		{"masked group count", "b.Groups", gemm.ErrShape, masked([]int32{1, 1}, 4, func(a *tensor.FP8Matrix, b *tensor.FP4Matrix) { b.Groups = 1 })},
	}
}

// fp8Only hides a backend's FP4 methods.
type fp8Only struct{ gemm.Backend }

func (s fp4Suite) badInput(t *testing.T) {
	for _, c := range fp4BadCases() {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(s.b)
			if errors.Is(err, gemm.ErrUnsupported) && c.want != gemm.ErrUnsupported {
				t.Skipf("backend %s: %v", s.b.Name(), err)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, c.want)
			}
			var ae *gemm.ArgError
			if !errors.As(err, &ae) || ae.Arg != c.arg {
				t.Fatalf("error %v does not name the argument %q", err, c.arg)
			}
		})
	}
}

// FuzzFP4 fuzzes the argument handling of b's FP8×FP4 calls: dimensions,
// strides, slice lengths, scale granularity and format, group counts,
// mIndices and maskedM come from the fuzzer's bytes, and every call must
// either succeed or return a *gemm.ArgError wrapping a gemm sentinel; it
// must never panic. A backend's test calls it from its own FuzzXxx.
func FuzzFP4(f *testing.F, b gemm.Backend) {
	f.Add([]byte{8, 16, 130, 0, 0, 0, 2, 1, 0, 0, 0, 0})
	f.Add([]byte{129, 3, 7, 1, 1, 1, 1, 3, 5, 2, 1, 9})
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
		scaleK := []int{32, 128, 64, 0}[get(5)%4]
		lenDelta := get(6)%5 - 2
		mkA := func(rows, groups, strideExtra int) *tensor.FP8Matrix {
			x := &tensor.FP8Matrix{Groups: groups, Rows: rows, K: k, ScaleRows: 1, Format: fmtA}
			if strideExtra > 0 {
				x.Stride = k + strideExtra
			}
			data := make([]tensor.E4M3, max(0, groups*rows*x.RowStride()+lenDelta))
			for i := range data {
				data[i] = tensor.E4M3(0x38 + i%7)
			}
			x.Data = tensor.Host[tensor.E4M3](data)
			ns := groups * rows * ((k + 127) / 128)
			x.ScalesF32 = tensor.Host[float32](fill(make([]float32, ns), 0.5))
			x.ScalesUE8M0 = tensor.Host[tensor.UE8M0](fill(make([]tensor.UE8M0, ns), 126))
			return x
		}
		mkB := func(rows, groups, strideExtra int) *tensor.FP4Matrix {
			x := &tensor.FP4Matrix{Groups: groups, Rows: rows, K: k, ScaleK: scaleK, Format: fmtB}
			if strideExtra > 0 {
				x.Stride = k/2 + strideExtra
			}
			data := make([]tensor.E2M1x2, max(0, groups*rows*x.RowStride()+lenDelta))
			for i := range data {
				data[i] = tensor.E2M1x2(i * 37)
			}
			x.Data = tensor.Host[tensor.E2M1x2](data)
			ns := 0
			if scaleK > 0 {
				ns = groups * rows * ((k + scaleK - 1) / scaleK)
			}
			if get(8)%7 == 3 && ns > 0 {
				ns--
			}
			x.ScalesF32 = tensor.Host[float32](fill(make([]float32, ns), 0.25))
			x.ScalesUE8M0 = tensor.Host[tensor.UE8M0](fill(make([]tensor.UE8M0, ns), 125))
			return x
		}
		a, bm := mkA(m, 1, get(9)%3), mkB(n, 1, get(9)%2)
		bg, ag := mkB(n, g, 0), mkA(m, g, 0)
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
		check("FP8FP4GemmNT", gemm.FP8FP4GemmNT(ctx, b, a, bm, d))
		idx := make([]int32, m)
		for i := range idx {
			idx[i] = int32(get(12+i/128)%(g+2)) - 1
		}
		check("FP8FP4GroupedContiguousNT", gemm.FP8FP4GroupedContiguousNT(ctx, b, a, bg, d, idx))
		mm := make([]int32, g)
		for i := range mm {
			mm[i] = int32(get(16+i) % (m + 2))
		}
		check("FP8FP4GroupedMaskedNT", gemm.FP8FP4GroupedMaskedNT(ctx, b, ag, bg, oracle.NewOut(g*m, n, 0, true, 0), mm, get(20)))
	})
}

func fill[T any](s []T, v T) []T {
	for i := range s {
		s[i] = v
	}
	return s
}
