package gemmtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// FP4Recipes are the B scale recipes the FP8×FP4 suite runs: DeepGEMM's
// FP4 test config (gran_k_b = 32) with UE8M0 scales as on SM100, and the
// other combinations of granularity (32, 128) and format.
var FP4Recipes = []struct {
	ScaleK int
	Opt    tensor.QuantOptions
}{{32, tensor.QuantOptions{UE8M0: true}}, {32, tensor.QuantOptions{}}, {128, tensor.QuantOptions{UE8M0: true}}, {128, tensor.QuantOptions{}}}

// FP4DenseShapes returns the FP8×FP4 dense grid: upstream's normal shapes
// (tests/generators.py enumerate_normal) M ∈ {1, 128, 4096} × (N,K) ∈
// {(2112,7168), (576,7168), (24576,1536), (32768,512), (7168,16384),
// (4096,7168), (7168,2048)}; with short set, a scaled-down grid whose N and
// K are not multiples of 128 (N=2112 and 264, K=576 and 130, a 2-element
// last scale block).
func FP4DenseShapes(short bool) []oracle.Shape {
	if short {
		return []oracle.Shape{{M: 1, N: 2112, K: 576}, {M: 7, N: 576, K: 768}, {M: 64, N: 264, K: 130}, {M: 128, N: 200, K: 1026}}
	}
	var out []oracle.Shape
	for _, m := range []int{1, 128, 4096} {
		for _, nk := range [][2]int{{2112, 7168}, {576, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}, {4096, 7168}, {7168, 2048}} {
			out = append(out, oracle.Shape{M: m, N: nk[0], K: nk[1]})
		}
	}
	return out
}

type fp4Suite struct {
	*suite
}

// RunFP4 runs the FP8×FP4 conformance cases (gemm.FP8FP4GemmNT and the
// m-grouped contiguous and masked calls) against b, which must implement
// gemm.FP4Backend: upstream's gates (calc_diff < 0.01 against the
// unquantized float64 product, < 1e-5 against the dequantized one, 1e-6 for
// float32 outputs) on the dense grid, K and N not multiples of 128, every
// B scale recipe, C accumulation, strides, empty groups, padding rows,
// NaN propagation, empty dimensions, bad input and cancellation.
func RunFP4(t *testing.T, b gemm.Backend, opt Options) {
	if _, ok := b.(gemm.FP4Backend); !ok {
		t.Fatalf("backend %s does not implement gemm.FP4Backend", b.Name())
	}
	s := fp4Suite{&suite{b: b, caps: b.Caps(), opt: opt}}
	t.Run("Dense", s.dense)
	t.Run("Recipes", s.recipes)
	t.Run("OutF32Accumulate", s.accumulate)
	t.Run("Strided", s.strided)
	t.Run("Contiguous", s.contiguous)
	t.Run("Masked", s.masked)
	t.Run("Edges", s.edges)
	t.Run("NaN", s.nan)
	t.Run("BadInput", s.badInput)
	t.Run("Cancel", s.cancel)
	if b.Name() != "ref" {
		t.Run("AgreesWithRef", s.agreesWithRef)
	}
}

var fp4ProblemCache sync.Map // fp4Key → *oracle.FP4Problem

type fp4Key struct {
	seed   uint64
	s      oracle.Shape
	scaleK int
	opt    tensor.QuantOptions
}

// fp4Problem returns oracle.NewFP4Problem, cached for small shapes and
// shared between runs that do not modify it.
func fp4Problem(seed uint64, s oracle.Shape, scaleK int, opt tensor.QuantOptions) *oracle.FP4Problem {
	if s.M*s.N > cacheMaxElems || (s.M+s.N)*s.K > cacheMaxElems {
		return oracle.NewFP4Problem(seed, s, scaleK, opt)
	}
	k := fp4Key{seed, s, scaleK, opt}
	if p, ok := fp4ProblemCache.Load(k); ok {
		return p.(*oracle.FP4Problem)
	}
	p := oracle.NewFP4Problem(seed, s, scaleK, opt)
	fp4ProblemCache.Store(k, p)
	return p
}

// gemmCase runs FP8FP4GemmNT on p into a BF16 D and checks both gates.
func (s fp4Suite) gemmCase(t *testing.T, p *oracle.FP4Problem) {
	t.Helper()
	sh := p.Shape
	s.need(t, s.caps.OutBF16, "BF16 output")
	s.need(t, p.Opt.UE8M0 && s.caps.ScalesUE8M0 || !p.Opt.UE8M0 && s.caps.ScalesF32, "the scale format")
	s.shapeOK(t, sh.N, sh.K)
	s.limit(t, sh.M*sh.N*sh.K)
	d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
	if err := gemm.FP8FP4GemmNT(context.Background(), s.b, p.A, p.B, d); err != nil {
		t.Fatalf("FP8FP4GemmNT: %v", err)
	}
	got := oracle.OutF64(d)
	checkGate(t, "vs unquantized", got, cachedMatMulNT64(p.X, p.Y, sh.M, sh.N, sh.K), oracle.GateFP8FP4)
	checkGate(t, "vs dequantized", got, cachedMatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K), oracle.GateDequantized)
}

func (s fp4Suite) dense(t *testing.T) {
	shapes := FP4DenseShapes(!s.large())
	if s.opt.Quick {
		shapes = shapes[:2]
	}
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		s.gemmCase(t, fp4Problem(uint64(1100+i), sh, 32, tensor.QuantOptions{UE8M0: true}))
	})
}

func (s fp4Suite) recipes(t *testing.T) {
	sh := oracle.Shape{M: 33, N: 130, K: 322} // 322 = 2·128 + 66 = 10·32 + 2
	for i, r := range FP4Recipes {
		t.Run(fmt.Sprintf("ScaleK=%d/UE8M0=%v", r.ScaleK, r.Opt.UE8M0), func(t *testing.T) {
			p := fp4Problem(uint64(1200+i), sh, r.ScaleK, r.Opt)
			if p.B.ScaleK != r.ScaleK || (p.B.Format == tensor.ScaleUE8M0) != r.Opt.UE8M0 {
				t.Fatal("quantizer did not produce the recipe")
			}
			s.gemmCase(t, p)
		})
	}
}

func (s fp4Suite) gemm(t *testing.T, p *oracle.FP4Problem, d *gemm.Out) {
	t.Helper()
	if err := gemm.FP8FP4GemmNT(context.Background(), s.b, p.A, p.B, d); err != nil {
		t.Fatal(err)
	}
}

func (s fp4Suite) accumulate(t *testing.T) {
	sh := oracle.Shape{M: 48, N: 320, K: 512}
	p := fp4Problem(1300, sh, 32, tensor.QuantOptions{UE8M0: true})
	want := cachedMatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K)
	c := testutil.Normal(testutil.RNG(1301), sh.M*sh.N, 0, 32) // upstream: d = randn·32 as C
	t.Run("F32", func(t *testing.T) {
		s.need(t, s.caps.OutF32, "float32 output")
		d := oracle.NewOut(sh.M, sh.N, 0, true, sentinel)
		s.gemm(t, p, d)
		checkGate(t, "F32 out", oracle.OutF64(d), want, oracle.GateF32)
	})
	t.Run("F32+C", func(t *testing.T) {
		s.need(t, s.caps.OutF32 && s.caps.Accumulate, "float32 output with C")
		d := oracle.NewOut(sh.M, sh.N, 0, true, sentinel)
		d.C = tensor.Host[float32](c)
		s.gemm(t, p, d)
		checkGate(t, "F32 out + C", oracle.OutF64(d), addC(want, c, sh.M, sh.N, sh.N), oracle.GateF32)
	})
	t.Run("InPlace", func(t *testing.T) {
		s.need(t, s.caps.OutF32 && s.caps.Accumulate, "in-place float32 accumulation")
		d := oracle.NewOut(sh.M, sh.N, 0, true, 0)
		copy(hostOf(d.F32), c)
		d.C = d.F32
		s.gemm(t, p, d)
		checkGate(t, "D += A·Bᵀ", oracle.OutF64(d), addC(want, c, sh.M, sh.N, sh.N), oracle.GateF32)
	})
	t.Run("BF16+C", func(t *testing.T) {
		s.need(t, s.caps.OutBF16 && s.caps.Accumulate, "BF16 output with C")
		d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
		d.C = tensor.Host[float32](c)
		s.gemm(t, p, d)
		checkGate(t, "BF16 out + C", oracle.OutF64(d), addC(want, c, sh.M, sh.N, sh.N), oracle.GateDequantized)
	})
}

// restrideFP4 copies m's rows into a buffer with the given row stride in
// bytes, filling the gaps with the code pair (−6, −6) whose products would
// show in any result that read them.
func restrideFP4(m *tensor.FP4Matrix, stride int) *tensor.FP4Matrix {
	out := *m
	rows := m.NumGroups() * m.Rows
	out.Stride = stride
	data, src := make([]tensor.E2M1x2, rows*stride), hostOf(m.Data)
	for i := range data {
		data[i] = 0xFF
	}
	for r := 0; r < rows; r++ {
		copy(data[r*stride:], src[r*m.RowStride():r*m.RowStride()+m.K/2])
	}
	out.Data = tensor.Host[tensor.E2M1x2](data)
	return &out
}

func (s fp4Suite) strided(t *testing.T) {
	s.need(t, s.caps.Strided && s.caps.OutF32, "row strides and float32 output")
	sh := oracle.Shape{M: 37, N: 200, K: 300}
	s.shapeOK(t, sh.N, sh.K)
	p := fp4Problem(1400, sh, 32, tensor.QuantOptions{})
	a, b := restride(p.A, sh.K+16), restrideFP4(p.B, sh.K/2+5)
	d := oracle.NewOut(sh.M, sh.N, sh.N+8, true, sentinel)
	if err := gemm.FP8FP4GemmNT(context.Background(), s.b, a, b, d); err != nil {
		t.Fatal(err)
	}
	checkGate(t, "strided", oracle.OutF64(d), oracle.MatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K), oracle.GateF32)
	for r := 0; r < sh.M-1; r++ {
		for c := sh.N; c < sh.N+8; c++ {
			if v := hostOf(d.F32)[r*(sh.N+8)+c]; v != sentinel {
				t.Fatalf("D stride gap [%d,%d] overwritten with %v", r, c, v)
			}
		}
	}
}

// stackFP4 is tensor.StackFP4 for operands the suite built.
func stackFP4(ms []*tensor.FP4Matrix) *tensor.FP4Matrix {
	b, err := tensor.StackFP4(ms...)
	if err != nil {
		panic(err)
	}
	return b
}

func (s fp4Suite) contiguous(t *testing.T) {
	type cfg struct{ g, m, n, k int }
	cfgs := []cfg{{4, 64, 256, 384}, {3, 40, 264, 130}}
	// Upstream's m-grouped grid: (G, M/group) ∈ {(4,8192), (8,4096)} × (N,K)
	// ∈ {(6144,7168), (7168,3072), (4096,4096), (4096,2048)}; two of its
	// shapes, scaled in M, in the long mode.
	cfgs = withLarge(s.suite, cfgs, cfg{4, 384, 4096, 2048}, cfg{8, 192, 7168, 3072})
	for i, c := range cfgs {
		t.Run(fmt.Sprintf("G=%d/M=%d/N=%d/K=%d", c.g, c.m, c.n, c.k), func(t *testing.T) {
			s.need(t, s.caps.OutBF16 && s.caps.ScalesUE8M0, "BF16 output and UE8M0 scales")
			s.shapeOK(t, c.n, c.k)
			s.limit(t, c.g*c.m*c.n*c.k)
			r := testutil.RNG(uint64(1500 + i))
			opt := tensor.QuantOptions{UE8M0: true}
			var idx []int32
			var seg [][2]int
			for g := 0; g < c.g; g++ {
				mg := int(float64(c.m) * (0.7 + 0.6*r.Float64()))
				if g == 1 {
					mg = 0 // an empty group
				}
				start := len(idx)
				for j := 0; j < gemm.AlignM(mg); j++ {
					v := int32(g)
					if j >= mg {
						v = -1
					}
					idx = append(idx, v)
				}
				seg = append(seg, [2]int{start, mg})
			}
			mTot := len(idx)
			x := oracle.Randn(r, mTot*c.k)
			a, _ := tensor.QuantizePerToken(x, mTot, c.k, opt)
			da, _ := tensor.Dequantize(a)
			var bs []*tensor.FP4Matrix
			var ys [][]float32
			for g := 0; g < c.g; g++ {
				y := oracle.Randn(r, c.n*c.k)
				bq, err := tensor.QuantizePerTokenFP4(y, c.n, c.k, 32, opt)
				if err != nil {
					t.Fatal(err)
				}
				bs, ys = append(bs, bq), append(ys, y)
			}
			b := stackFP4(bs)
			for _, zero := range []bool{false, true} {
				d := oracle.NewOut(mTot, c.n, 0, false, sentinel)
				d.ZeroUnused = zero
				if err := gemm.FP8FP4GroupedContiguousNT(context.Background(), s.b, a, b, d, idx); err != nil {
					t.Fatal(err)
				}
				got := oracle.OutF64(d)
				var pad []int
				for i, v := range idx {
					if v < 0 {
						pad = append(pad, i)
					}
				}
				fill := float32(sentinel)
				if zero {
					fill = 0
				}
				untouched(t, d, pad, fill)
				for g, sg := range seg {
					if sg[1] == 0 {
						continue
					}
					lo, hi := sg[0]*c.n, (sg[0]+sg[1])*c.n
					db, _ := tensor.DequantizeFP4(bs[g])
					gd := oracle.MatMulNT64(da[sg[0]*c.k:(sg[0]+sg[1])*c.k], db, sg[1], c.n, c.k)
					gu := oracle.MatMulNT64(x[sg[0]*c.k:(sg[0]+sg[1])*c.k], ys[g], sg[1], c.n, c.k)
					checkGate(t, fmt.Sprintf("group %d vs dequantized", g), got[lo:hi], gd, oracle.GateDequantized)
					checkGate(t, fmt.Sprintf("group %d vs unquantized", g), got[lo:hi], gu, oracle.GateFP8FP4)
				}
			}
		})
	}
}

func (s fp4Suite) masked(t *testing.T) {
	type cfg struct{ g, mmax, n, k int }
	cfgs := []cfg{{4, 48, 320, 576}, {3, 20, 130, 258}}
	// Upstream's masked grid: (G, expected M) ∈ {(32,192), (6,1024), (32,20),
	// (6,20)}, max_m 4096; scaled versions in the long mode.
	cfgs = withLarge(s.suite, cfgs, cfg{6, 256, 4096, 2048}, cfg{6, 20, 6144, 7168})
	for i, c := range cfgs {
		t.Run(fmt.Sprintf("G=%d/Mmax=%d/N=%d/K=%d", c.g, c.mmax, c.n, c.k), func(t *testing.T) {
			s.need(t, s.caps.OutBF16 && s.caps.ScalesUE8M0, "BF16 output and UE8M0 scales")
			s.shapeOK(t, c.n, c.k)
			s.limit(t, c.g*c.mmax*c.n*c.k)
			r := testutil.RNG(uint64(1600 + i))
			opt := tensor.QuantOptions{UE8M0: true}
			masked := make([]int32, c.g)
			choices := []int32{0, 1, int32(c.mmax), int32(r.IntN(c.mmax + 1))}
			for g := range masked {
				masked[g] = choices[g%len(choices)]
			}
			var as []*tensor.FP8Matrix
			var bs []*tensor.FP4Matrix
			var xs, ys [][]float32
			for g := 0; g < c.g; g++ {
				x, y := oracle.Randn(r, c.mmax*c.k), oracle.Randn(r, c.n*c.k)
				aq, _ := tensor.QuantizePerToken(x, c.mmax, c.k, opt)
				bq, _ := tensor.QuantizePerTokenFP4(y, c.n, c.k, 32, opt)
				as, bs, xs, ys = append(as, aq), append(bs, bq), append(xs, x), append(ys, y)
			}
			a, _ := tensor.Stack(as...)
			b := stackFP4(bs)
			for _, zero := range []bool{false, true} {
				d := oracle.NewOut(c.g*c.mmax, c.n, 0, false, sentinel)
				d.ZeroUnused = zero
				if err := gemm.FP8FP4GroupedMaskedNT(context.Background(), s.b, a, b, d, masked, c.mmax/2); err != nil {
					t.Fatal(err)
				}
				got := oracle.OutF64(d)
				for g := 0; g < c.g; g++ {
					var rest []int
					for m := int(masked[g]); m < c.mmax; m++ {
						rest = append(rest, g*c.mmax+m)
					}
					fill := float32(sentinel)
					if zero {
						fill = 0
					}
					untouched(t, d, rest, fill)
					mg := int(masked[g])
					if mg == 0 {
						continue
					}
					lo := g * c.mmax * c.n
					db, _ := tensor.DequantizeFP4(bs[g])
					gd := oracle.MatMulNT64(mustDeq(as[g])[:mg*c.k], db, mg, c.n, c.k)
					gu := oracle.MatMulNT64(xs[g][:mg*c.k], ys[g], mg, c.n, c.k)
					checkGate(t, fmt.Sprintf("group %d (maskedM=%d) vs dequantized", g, mg), got[lo:lo+mg*c.n], gd, oracle.GateDequantized)
					if mg > 1 { // one row of 130 products is too few for a statistical gate
						checkGate(t, fmt.Sprintf("group %d (maskedM=%d) vs unquantized", g, mg), got[lo:lo+mg*c.n], gu, oracle.GateFP8FP4)
					}
				}
			}
		})
	}
}

func (s fp4Suite) edges(t *testing.T) {
	s.need(t, s.caps.OutF32 && s.caps.Accumulate, "float32 output with C")
	ctx := context.Background()
	opt := tensor.QuantOptions{}
	t.Run("M=0", func(t *testing.T) {
		p := oracle.NewFP4Problem(1700, oracle.Shape{M: 0, N: 64, K: 256}, 32, opt)
		if err := gemm.FP8FP4GemmNT(ctx, s.b, p.A, p.B, oracle.NewOut(0, 64, 0, true, sentinel)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("N=0", func(t *testing.T) {
		p := oracle.NewFP4Problem(1701, oracle.Shape{M: 8, N: 0, K: 256}, 32, opt)
		if err := gemm.FP8FP4GemmNT(ctx, s.b, p.A, p.B, oracle.NewOut(8, 0, 0, true, sentinel)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("K=0", func(t *testing.T) {
		s.shapeOK(t, 8, 0)
		p := oracle.NewFP4Problem(1702, oracle.Shape{M: 4, N: 8, K: 0}, 32, opt)
		d := oracle.NewOut(4, 8, 0, true, sentinel)
		if err := gemm.FP8FP4GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
		untouched(t, d, []int{0, 1, 2, 3}, 0)
		d = oracle.NewOut(4, 8, 0, true, sentinel)
		c := make([]float32, 32)
		for i := range c {
			c[i] = 7
		}
		d.C = tensor.Host[float32](c)
		if err := gemm.FP8FP4GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
		untouched(t, d, []int{0, 1, 2, 3}, 7)
	})
	t.Run("K=2", func(t *testing.T) {
		// The smallest FP4 row: one byte. Exact in float32: check bits.
		p := oracle.NewFP4Problem(1703, oracle.Shape{M: 3, N: 5, K: 2}, 32, opt)
		d := oracle.NewOut(3, 5, 0, true, sentinel)
		if err := gemm.FP8FP4GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
		want := oracle.MatMulNT64(p.DA, p.DB, 3, 5, 2)
		if diff := testutil.MaxAbsDiff(oracle.OutF64(d), want); diff > 1e-6 {
			t.Fatalf("K=2: max |D − oracle| = %g", diff)
		}
	})
	t.Run("N=0/M=2^40", func(t *testing.T) {
		const huge = 1 << 40
		a := &tensor.FP8Matrix{Rows: huge, ScaleRows: 1}
		b := &tensor.FP4Matrix{ScaleK: 32}
		if err := gemm.FP8FP4GemmNT(ctx, s.b, a, b, &gemm.Out{Rows: huge, F32: tensor.Host[float32]{}}); err != nil {
			t.Fatal(err)
		}
	})
}

func (s fp4Suite) nan(t *testing.T) {
	sh := oracle.Shape{M: 16, N: 200, K: 384}
	s.shapeOK(t, sh.N, sh.K)
	for _, opt := range []tensor.QuantOptions{{}, {UE8M0: true}} {
		t.Run(fmt.Sprintf("UE8M0=%v", opt.UE8M0), func(t *testing.T) {
			s.need(t, s.caps.OutBF16 && (opt.UE8M0 && s.caps.ScalesUE8M0 || !opt.UE8M0 && s.caps.ScalesF32), "BF16 output and the scale format")
			p := oracle.NewFP4Problem(1750, sh, 32, opt)
			hostOf(p.A.Data)[3*sh.K+5] = tensor.E4M3NaNBits // row 3 of A
			// B row 150, scale block 7: E2M1 has no NaN, so NaN enters through a scale.
			if opt.UE8M0 {
				hostOf(p.B.ScalesUE8M0)[150*p.B.KBlocks()+7] = tensor.UE8M0NaNBits
			} else {
				hostOf(p.B.ScalesF32)[150*p.B.KBlocks()+7] = float32(math.NaN())
			}
			d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
			s.gemm(t, p, d)
			for m := 0; m < sh.M; m++ {
				for n := 0; n < sh.N; n++ {
					v := hostOf(d.BF16)[m*sh.N+n]
					if want := m == 3 || n == 150; v.IsNaN() != want {
						t.Fatalf("D[%d,%d] = %v, NaN expected: %v", m, n, v.Float32(), want)
					}
				}
			}
		})
	}
	t.Run("QuantizedNaN", func(t *testing.T) {
		// A NaN in the weights survives QuantizePerTokenFP4 (as a NaN scale).
		s.need(t, s.caps.OutF32 && s.caps.ScalesUE8M0, "float32 output and UE8M0 scales")
		p := oracle.NewFP4Problem(1751, oracle.Shape{M: 4, N: 6, K: 64}, 32, tensor.QuantOptions{UE8M0: true})
		y := append([]float32(nil), p.Y...)
		y[2*64+40] = float32(math.NaN())
		b, err := tensor.QuantizePerTokenFP4(y, 6, 64, 32, tensor.QuantOptions{UE8M0: true})
		if err != nil {
			t.Fatal(err)
		}
		d := oracle.NewOut(4, 6, 0, true, 0)
		if err := gemm.FP8FP4GemmNT(context.Background(), s.b, p.A, b, d); err != nil {
			t.Fatal(err)
		}
		for m := 0; m < 4; m++ {
			for n := 0; n < 6; n++ {
				if v := hostOf(d.F32)[m*6+n]; (v != v) != (n == 2) {
					t.Fatalf("D[%d,%d] = %v, NaN expected: %v", m, n, v, n == 2)
				}
			}
		}
	})
}

func (s fp4Suite) cancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := fp4Problem(1800, oracle.Shape{M: 64, N: 256, K: 256}, 32, tensor.QuantOptions{})
	d := oracle.NewOut(64, 256, 0, false, 0)
	if err := gemm.FP8FP4GemmNT(ctx, s.b, p.A, p.B, d); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled FP8FP4GemmNT returned %v, want context.Canceled", err)
	}
}

func (s fp4Suite) agreesWithRef(t *testing.T) {
	for i, r := range FP4Recipes {
		sh := oracle.Shape{M: 67, N: 330, K: 640}
		p := fp4Problem(uint64(1900+i), sh, r.ScaleK, r.Opt)
		for _, f32 := range []bool{false, true} {
			if f32 && !s.caps.OutF32 || !f32 && !s.caps.OutBF16 || r.Opt.UE8M0 && !s.caps.ScalesUE8M0 || !r.Opt.UE8M0 && !s.caps.ScalesF32 {
				continue
			}
			d1, d2 := oracle.NewOut(sh.M, sh.N, 0, f32, 0), oracle.NewOut(sh.M, sh.N, 0, f32, 0)
			if err := gemm.FP8FP4GemmNT(context.Background(), s.b, p.A, p.B, d1); err != nil {
				t.Fatal(err)
			}
			if err := gemm.FP8FP4GemmNT(context.Background(), ref.New(), p.A, p.B, d2); err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("vs ref (ScaleK=%d ue8m0=%v f32=%v)", r.ScaleK, r.Opt.UE8M0, f32)
			checkGate(t, what, oracle.OutF64(d1), oracle.OutF64(d2), oracle.GateDequantized)
			if d := testutil.MaxAbsDiff(oracle.OutF64(d1), oracle.OutF64(d2)); f32 && d > 1e-3 {
				t.Errorf("%s: max |D−ref| = %g", what, d)
			}
		}
	}
}
