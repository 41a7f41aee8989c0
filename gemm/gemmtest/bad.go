package gemmtest

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
	"math/rand/v2"
)

// badCase is one malformed call and the sentinel its error must wrap.
type badCase struct {
	name string
	want error
	call func(b gemm.Backend) error
}

func clone(m *tensor.FP8Matrix) *tensor.FP8Matrix { c := *m; return &c }

func badCases() []badCase {
	p := oracle.NewProblem(990, oracle.Shape{M: 8, N: 200, K: 300}, tensor.QuantOptions{})
	ctx := context.Background()
	out := func() *gemm.Out { return oracle.NewOut(8, 200, 0, false, 0) }
	dense := func(mod func(a, b *tensor.FP8Matrix, d *gemm.Out)) func(gemm.Backend) error {
		return func(be gemm.Backend) error {
			a, b, d := clone(p.A), clone(p.B), out()
			mod(a, b, d)
			return gemm.FP8GemmNT(ctx, be, a, b, d)
		}
	}
	// Grouped operands: A [256,300] with two 128-row blocks, B [2,200,300].
	ga, _ := tensor.QuantizePerToken(oracle.Randn(testRNG(), 256*300), 256, 300, tensor.QuantOptions{})
	gb, _ := tensor.Stack(p.B, p.B)
	idx := func() []int32 {
		x := make([]int32, 256)
		for i := 128; i < 256; i++ {
			x[i] = 1
		}
		return x
	}
	contig := func(mod func(idx []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32) func(gemm.Backend) error {
		return func(be gemm.Backend) error {
			b, d := clone(gb), oracle.NewOut(256, 200, 0, false, 0)
			ix := mod(idx(), b, d)
			return gemm.GroupedContiguousNT(ctx, be, ga, b, d, ix)
		}
	}
	ma, _ := tensor.Stack(p.A, p.A)
	masked := func(mm []int32, exp int, mod func(a, b *tensor.FP8Matrix)) func(gemm.Backend) error {
		return func(be gemm.Backend) error {
			a, b := clone(ma), clone(gb)
			if mod != nil {
				mod(a, b)
			}
			return gemm.GroupedMaskedNT(ctx, be, a, b, oracle.NewOut(16, 200, 0, false, 0), mm, exp)
		}
	}
	return []badCase{
		{"K mismatch", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { b.K = 299 })},
		{"A data short", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { a.Data = trim(a.Data, a.Data.Len()-1) })},
		{"B data short", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { b.Data = trim(b.Data, 10) })},
		{"A stride below K", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { a.Stride = 299 })},
		{"negative rows", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { a.Rows = -1 })},
		{"A scales short", gemm.ErrScales, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { a.ScalesF32 = trim(a.ScalesF32, a.ScalesF32.Len()-1) })},
		{"B scales long", gemm.ErrScales, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) {
			b.ScalesF32 = tensor.Host[float32](append(append([]float32(nil), hostOf(b.ScalesF32)...), 1))
		})},
		{"bad ScaleRows", gemm.ErrScales, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { b.ScaleRows = 64 })},
		{"bad scale format", gemm.ErrScales, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { a.Format = 9 })},
		{"UE8M0 scales missing", gemm.ErrScales, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { a.Format = tensor.ScaleUE8M0 })},
		{"dense with groups", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { b.Groups = 2 })},
		{"D shape", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { d.Cols = 199 })},
		{"D short", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { d.BF16 = trim(d.BF16, 100) })},
		{"D no buffer", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { d.BF16 = nil })},
		{"D two buffers", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { d.F32 = tensor.Host[float32](make([]float32, 1600)) })},
		{"D stride", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { d.Stride = 10 })},
		{"C short", gemm.ErrShape, dense(func(a, b *tensor.FP8Matrix, d *gemm.Out) { d.C = tensor.Host[float32](make([]float32, 5)) })},
		{"nil D", gemm.ErrShape, func(be gemm.Backend) error { return gemm.FP8GemmNT(ctx, be, p.A, p.B, nil) }},
		{"nil A", gemm.ErrShape, func(be gemm.Backend) error { return gemm.FP8GemmNT(ctx, be, nil, p.B, out()) }},
		{"mIndices length", gemm.ErrShape, contig(func(ix []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32 { return ix[:255] })},
		{"mIndices out of range", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32 {
			for i := 128; i < 256; i++ {
				ix[i] = 2
			}
			return ix
		})},
		{"mIndices below -1", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32 { ix[0] = -2; return ix })},
		{"mIndices not constant in block", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32 { ix[200] = 0; return ix })},
		{"mIndices padding inside block", gemm.ErrIndices, contig(func(ix []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32 { ix[5] = -1; return ix })},
		{"contiguous B scales", gemm.ErrScales, contig(func(ix []int32, b *tensor.FP8Matrix, d *gemm.Out) []int32 {
			b.ScalesF32 = trim(b.ScalesF32, b.ScalesF32.Len()/2)
			return ix
		})},
		{"maskedM above Mmax", gemm.ErrIndices, masked([]int32{8, 9}, 4, nil)},
		{"maskedM negative", gemm.ErrIndices, masked([]int32{-1, 0}, 4, nil)},
		{"maskedM length", gemm.ErrShape, masked([]int32{1}, 4, nil)},
		{"expectedM negative", gemm.ErrIndices, masked([]int32{1, 1}, -1, nil)},
		{"masked group count", gemm.ErrShape, masked([]int32{1, 1}, 4, func(a, b *tensor.FP8Matrix) {
			b.Groups = 1
			b.Data = trim(b.Data, b.Data.Len()/2)
			b.ScalesF32 = trim(b.ScalesF32, b.ScalesF32.Len()/2)
		})},
		{"BF16 K mismatch", gemm.ErrShape, func(be gemm.Backend) error {
			a := &gemm.BF16Matrix{Rows: 4, K: 10, Data: tensor.Host[bf16](make([]bf16, 40))}
			b := &gemm.BF16Matrix{Rows: 3, K: 11, Data: tensor.Host[bf16](make([]bf16, 33))}
			return gemm.BF16GemmNT(ctx, be, a, b, oracle.NewOut(4, 3, 0, true, 0))
		}},
		{"BF16 data short", gemm.ErrShape, func(be gemm.Backend) error {
			a := &gemm.BF16Matrix{Rows: 4, K: 10, Data: tensor.Host[bf16](make([]bf16, 39))}
			b := &gemm.BF16Matrix{Rows: 3, K: 10, Data: tensor.Host[bf16](make([]bf16, 30))}
			return gemm.BF16GemmNT(ctx, be, a, b, oracle.NewOut(4, 3, 0, true, 0))
		}},
	}
}

func (s *suite) badInput(t *testing.T) {
	for _, c := range badCases() {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(s.b)
			if errors.Is(err, gemm.ErrUnsupported) {
				t.Skipf("backend %s: %v", s.b.Name(), err)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, c.want)
			}
			var ae *gemm.ArgError
			if !errors.As(err, &ae) || ae.Arg == "" {
				t.Fatalf("error %v does not name the argument", err)
			}
		})
	}
}

type bf16 = tensor.BF16

func testRNG() *rand.Rand { return testutil.RNG(991) }
