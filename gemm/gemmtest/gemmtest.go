package gemmtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Options tunes Run.
type Options struct {
	// MaxMACs skips (by name) cases with more than this many
	// multiply-accumulates (M·N·K summed over groups); 0 means no limit.
	// The slow reference backend uses it to stay within CI time.
	MaxMACs int
	// Quick runs a reduced dense grid (two shapes) and only the small
	// shapes of the other cases: for extra configurations of a backend
	// (other kernel sets, one worker) once the full suite has run.
	Quick bool
}

// DenseShapes returns the dense grid: upstream's normal shapes with M ∈
// {1, 7, 64, 128, 1024} and (N,K) ∈ {(2112,7168), (576,7168), (4096,1536),
// (4096,512), (7168,2048)}; with short set, a scaled-down grid (M ∈ {1, 7,
// 64, 128}) that keeps the odd tails N=2112 and K=576.
func DenseShapes(short bool) []oracle.Shape {
	ms := []int{1, 7, 64, 128, 1024}
	nks := [][2]int{{2112, 7168}, {576, 7168}, {4096, 1536}, {4096, 512}, {7168, 2048}}
	if short {
		return []oracle.Shape{{M: 1, N: 2112, K: 576}, {M: 7, N: 2112, K: 576}, {M: 64, N: 2112, K: 576}, {M: 1, N: 576, K: 768}, {M: 64, N: 576, K: 768}, {M: 128, N: 576, K: 768}}
	}
	var out []oracle.Shape
	for _, m := range ms {
		for _, nk := range nks {
			out = append(out, oracle.Shape{M: m, N: nk[0], K: nk[1]})
		}
	}
	return out
}

// cacheMaxElems bounds the problems and oracles kept between runs, so that
// the large grid does not hold gigabytes.
const cacheMaxElems = 1 << 21

var oracleCache sync.Map // key: *float32 of x, *float32 of y, m, n, k

type oracleKey struct {
	x, y    *float32
	m, n, k int
}

// cachedMatMulNT64 memoises MatMulNT64 for inputs that live as long as the
// problem cache (the same test problem is checked against several backend
// configurations).
func cachedMatMulNT64(x, y []float32, m, n, k int) []float64 {
	if len(x) == 0 || len(y) == 0 {
		return oracle.MatMulNT64(x, y, m, n, k)
	}
	if m*n > cacheMaxElems || (m+n)*k > cacheMaxElems {
		return oracle.MatMulNT64(x, y, m, n, k)
	}
	key := oracleKey{&x[0], &y[0], m, n, k}
	if v, ok := oracleCache.Load(key); ok {
		return v.([]float64)
	}
	v := oracle.MatMulNT64(x, y, m, n, k)
	oracleCache.Store(key, v)
	return v
}

var problemCache sync.Map

type problemKey struct {
	seed uint64
	s    oracle.Shape
	opt  tensor.QuantOptions
}

// cachedProblem returns oracle.NewProblem(seed, s, opt), shared between runs that
// do not modify it.
func cachedProblem(seed uint64, s oracle.Shape, opt tensor.QuantOptions) *oracle.Problem {
	if s.M*s.N > cacheMaxElems || (s.M+s.N)*s.K > cacheMaxElems {
		return oracle.NewProblem(seed, s, opt)
	}
	key := problemKey{seed, s, opt}
	if v, ok := problemCache.Load(key); ok {
		return v.(*oracle.Problem)
	}
	p := oracle.NewProblem(seed, s, opt)
	problemCache.Store(key, p)
	return p
}

// checkGate fails t when calc_diff(got, want) ≥ gate or is NaN.
func checkGate(t *testing.T, what string, got, want []float64, gate float64) {
	t.Helper()
	diff := testutil.CalcDiff(got, want)
	if !(diff < gate) {
		t.Errorf("%s: calc_diff = %.3g, want < %.0e", what, diff, gate)
	}
}

// sentinel fills outputs before a call; it is exact in BF16.
const sentinel = 1536

type suite struct {
	b    gemm.Backend
	caps gemm.Caps
	opt  Options
}

// long reports whether the exhaustive grid runs: asked for with
// FIREFLYER_LONG=1 (testutil.Long) and not overridden by -short.
func long() bool { return !testing.Short() && testutil.Long() }

// large reports whether the large shapes run: in the long mode (see long),
// and not in Quick mode.
func (s *suite) large() bool { return long() && !s.opt.Quick }

func (s *suite) limit(t *testing.T, macs int) {
	t.Helper()
	if s.opt.MaxMACs > 0 && macs > s.opt.MaxMACs {
		t.Skipf("%s: %d MACs above this backend's test limit %d", s.b.Name(), macs, s.opt.MaxMACs)
	}
}

func (s *suite) need(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Skipf("backend %s declares no support for %s", s.b.Name(), what)
	}
}

func (s *suite) shapeOK(t *testing.T, n, k int) {
	t.Helper()
	if s.caps.KAlign > 1 && k%s.caps.KAlign != 0 {
		t.Skipf("backend %s needs K %% %d == 0 (K=%d)", s.b.Name(), s.caps.KAlign, k)
	}
	if s.caps.NAlign > 1 && n%s.caps.NAlign != 0 {
		t.Skipf("backend %s needs N %% %d == 0 (N=%d)", s.b.Name(), s.caps.NAlign, n)
	}
}

// Run runs every conformance case against b.
func Run(t *testing.T, b gemm.Backend, opt Options) {
	s := &suite{b: b, caps: b.Caps(), opt: opt}
	t.Run("Dense", s.dense)
	t.Run("Tails", s.tails)
	t.Run("UE8M0", s.ue8m0)
	t.Run("OutF32Accumulate", s.accumulate)
	t.Run("Strided", s.strided)
	t.Run("Contiguous", s.contiguous)
	t.Run("Masked", s.masked)
	t.Run("BF16", s.bf16)
	t.Run("Edges", s.edges)
	t.Run("NaN", s.nan)
	t.Run("BadInput", s.badInput)
	t.Run("Cancel", s.cancel)
	if b.Name() != "ref" {
		t.Run("AgreesWithRef", s.agreesWithRef)
	}
}

// gemmCase runs GemmNT on p and checks both gates.
func (s *suite) gemmCase(t *testing.T, p *oracle.Problem, seedName string) {
	t.Helper()
	sh := p.Shape
	s.need(t, s.caps.OutBF16, "BF16 output")
	s.shapeOK(t, sh.N, sh.K)
	s.limit(t, sh.M*sh.N*sh.K)
	d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
	if err := gemm.FP8GemmNT(context.Background(), s.b, p.A, p.B, d); err != nil {
		t.Fatalf("%s: GemmNT: %v", seedName, err)
	}
	got := oracle.OutF64(d)
	checkGate(t, "vs unquantized", got, cachedMatMulNT64(p.X, p.Y, sh.M, sh.N, sh.K), oracle.GateUnquantized)
	checkGate(t, "vs dequantized", got, cachedMatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K), oracle.GateDequantized)
}

// eachShape runs f on every shape as a subtest named by the shape; i, the
// shape's index, offsets the problem's seed.
func eachShape(t *testing.T, shapes []oracle.Shape, f func(t *testing.T, i int, sh oracle.Shape)) {
	for i, sh := range shapes {
		t.Run(sh.String(), func(t *testing.T) { f(t, i, sh) })
	}
}

// withLarge returns cases with the large ones appended when suite s runs
// large cases.
func withLarge[C any](s *suite, cases []C, large ...C) []C {
	if s.large() {
		cases = append(cases, large...)
	}
	return cases
}

func (s *suite) dense(t *testing.T) {
	s.need(t, s.caps.ScalesF32, "float32 scales")
	shapes := DenseShapes(!long())
	if s.opt.Quick {
		shapes = []oracle.Shape{{M: 7, N: 2112, K: 576}, {M: 128, N: 576, K: 768}}
	}
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		s.gemmCase(t, cachedProblem(uint64(100+i), sh, tensor.QuantOptions{}), "dense")
	})
}

func (s *suite) tails(t *testing.T) {
	s.need(t, s.caps.ScalesF32, "float32 scales")
	shapes := []oracle.Shape{{M: 7, N: 2112, K: 576}, {M: 64, N: 264, K: 130}, {M: 5, N: 129, K: 1}, {M: 33, N: 130, K: 257}}
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		s.gemmCase(t, cachedProblem(uint64(200+i), sh, tensor.QuantOptions{}), "tail")
	})
}

func (s *suite) ue8m0(t *testing.T) {
	s.need(t, s.caps.ScalesUE8M0, "UE8M0 scales")
	shapes := []oracle.Shape{{M: 64, N: 576, K: 768}, {M: 7, N: 2112, K: 576}}
	shapes = withLarge(s, shapes, oracle.Shape{M: 128, N: 2112, K: 7168})
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		p := cachedProblem(uint64(300+i), sh, tensor.QuantOptions{UE8M0: true})
		if p.A.Format != tensor.ScaleUE8M0 || p.B.Format != tensor.ScaleUE8M0 {
			t.Fatal("quantizer did not produce UE8M0 scales")
		}
		s.gemmCase(t, p, "ue8m0")
	})
}

// gemmNT runs gemm.FP8GemmNT on p's operands into d and fails t on an
// error.
func (s *suite) gemmNT(t *testing.T, p *oracle.Problem, d *gemm.Out) {
	t.Helper()
	if err := gemm.FP8GemmNT(context.Background(), s.b, p.A, p.B, d); err != nil {
		t.Fatal(err)
	}
}

// addC returns c + want elementwise.
func addC(want []float64, c []float32, rows, cols, stride int) []float64 {
	out := make([]float64, len(want))
	for r := 0; r < rows; r++ {
		for j := 0; j < cols; j++ {
			out[r*cols+j] = want[r*cols+j] + float64(c[r*stride+j])
		}
	}
	return out
}

func (s *suite) accumulate(t *testing.T) {
	sh := oracle.Shape{M: 64, N: 576, K: 768}
	p := cachedProblem(400, sh, tensor.QuantOptions{})
	want := cachedMatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K)
	r := testutil.RNG(401)
	c := testutil.Normal(r, sh.M*sh.N, 0, 32)
	t.Run("F32", func(t *testing.T) {
		s.need(t, s.caps.OutF32, "float32 output")
		d := oracle.NewOut(sh.M, sh.N, 0, true, sentinel)
		s.gemmNT(t, p, d)
		checkGate(t, "F32 out", oracle.OutF64(d), want, oracle.GateF32)
	})
	t.Run("F32+C", func(t *testing.T) {
		s.need(t, s.caps.OutF32 && s.caps.Accumulate, "float32 output with C")
		d := oracle.NewOut(sh.M, sh.N, 0, true, sentinel)
		d.C = tensor.Host[float32](c)
		s.gemmNT(t, p, d)
		checkGate(t, "F32 out + C", oracle.OutF64(d), addC(want, c, sh.M, sh.N, sh.N), oracle.GateF32)
	})
	t.Run("InPlace", func(t *testing.T) {
		s.need(t, s.caps.OutF32 && s.caps.Accumulate, "in-place float32 accumulation")
		d := oracle.NewOut(sh.M, sh.N, 0, true, 0)
		copy(hostOf(d.F32), c)
		d.C = d.F32
		s.gemmNT(t, p, d)
		checkGate(t, "D += A·Bᵀ", oracle.OutF64(d), addC(want, c, sh.M, sh.N, sh.N), oracle.GateF32)
	})
	t.Run("BF16+C", func(t *testing.T) {
		s.need(t, s.caps.OutBF16 && s.caps.Accumulate, "BF16 output with C")
		d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
		d.C = tensor.Host[float32](c)
		s.gemmNT(t, p, d)
		checkGate(t, "BF16 out + C", oracle.OutF64(d), addC(want, c, sh.M, sh.N, sh.N), oracle.GateDequantized)
	})
}

// restride copies m's rows into a buffer with the given row stride, filling
// the gaps with NaN codes that would poison any result that read them.
func restride(m *tensor.FP8Matrix, stride int) *tensor.FP8Matrix {
	out := *m
	rows := m.NumGroups() * m.Rows
	out.Stride = stride
	data, src := make([]tensor.E4M3, rows*stride), hostOf(m.Data)
	for i := range data {
		data[i] = tensor.E4M3NaNBits
	}
	for r := 0; r < rows; r++ {
		copy(data[r*stride:], src[r*m.RowStride():r*m.RowStride()+m.K])
	}
	out.Data = tensor.Host[tensor.E4M3](data)
	return &out
}

func (s *suite) strided(t *testing.T) {
	s.need(t, s.caps.Strided, "row strides")
	sh := oracle.Shape{M: 37, N: 200, K: 300}
	s.shapeOK(t, sh.N, sh.K)
	p := oracle.NewProblem(500, sh, tensor.QuantOptions{})
	a, b := restride(p.A, sh.K+16), restride(p.B, sh.K+5)
	d := oracle.NewOut(sh.M, sh.N, sh.N+8, true, sentinel)
	if err := gemm.FP8GemmNT(context.Background(), s.b, a, b, d); err != nil {
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

// untouched checks that the listed rows of d still hold the fill value.
func untouched(t *testing.T, d *gemm.Out, rows []int, fill float32) {
	t.Helper()
	for _, r := range rows {
		for c := 0; c < d.Cols; c++ {
			i := r*d.RowStride() + c
			var v float32
			if d.F32 != nil {
				v = hostOf(d.F32)[i]
			} else {
				v = hostOf(d.BF16)[i].Float32()
			}
			if v != fill {
				t.Fatalf("row %d col %d = %v, want untouched %v", r, c, v, fill)
			}
		}
	}
}

func (s *suite) contiguous(t *testing.T) {
	s.need(t, s.caps.Contiguous, "the contiguous grouped layout")
	type cfg struct{ g, m, n, k int }
	cfgs := []cfg{{4, 80, 320, 640}, {3, 40, 264, 130}}
	cfgs = withLarge(s, cfgs, cfg{4, 384, 4096, 2048}, cfg{8, 192, 2112, 7168})
	for i, c := range cfgs {
		t.Run(fmt.Sprintf("G=%d/M=%d/N=%d/K=%d", c.g, c.m, c.n, c.k), func(t *testing.T) {
			s.shapeOK(t, c.n, c.k)
			s.limit(t, c.g*c.m*c.n*c.k)
			r := testutil.RNG(uint64(600 + i))
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
			a, _ := tensor.QuantizePerToken(x, mTot, c.k, tensor.QuantOptions{})
			da, _ := tensor.Dequantize(a)
			var bs []*tensor.FP8Matrix
			var ys [][]float32
			for g := 0; g < c.g; g++ {
				y := oracle.Randn(r, c.n*c.k)
				bq, _ := tensor.QuantizePerBlock(y, c.n, c.k, tensor.QuantOptions{})
				bs, ys = append(bs, bq), append(ys, y)
			}
			b, err := tensor.Stack(bs...)
			if err != nil {
				t.Fatal(err)
			}
			for _, zero := range []bool{false, true} {
				d := oracle.NewOut(mTot, c.n, 0, false, sentinel)
				d.ZeroUnused = zero
				if err := gemm.GroupedContiguousNT(context.Background(), s.b, a, b, d, idx); err != nil {
					t.Fatal(err)
				}
				got := oracle.OutF64(d)
				var pad []int
				for i, v := range idx {
					if v < 0 {
						pad = append(pad, i)
					}
				}
				if zero {
					untouched(t, d, pad, 0)
				} else {
					untouched(t, d, pad, sentinel)
				}
				for g, sg := range seg {
					if sg[1] == 0 {
						continue
					}
					lo, hi := sg[0]*c.n, (sg[0]+sg[1])*c.n
					gd := oracle.MatMulNT64(da[sg[0]*c.k:(sg[0]+sg[1])*c.k], mustDeq(bs[g]), sg[1], c.n, c.k)
					gu := oracle.MatMulNT64(x[sg[0]*c.k:(sg[0]+sg[1])*c.k], ys[g], sg[1], c.n, c.k)
					checkGate(t, fmt.Sprintf("group %d vs dequantized", g), got[lo:hi], gd, oracle.GateDequantized)
					checkGate(t, fmt.Sprintf("group %d vs unquantized", g), got[lo:hi], gu, oracle.GateUnquantized)
				}
			}
		})
	}
}

func mustDeq(m *tensor.FP8Matrix) []float32 {
	d, err := tensor.Dequantize(m)
	if err != nil {
		panic(err)
	}
	return d
}

func (s *suite) masked(t *testing.T) {
	s.need(t, s.caps.Masked, "the masked grouped layout")
	type cfg struct{ g, mmax, n, k int }
	cfgs := []cfg{{4, 48, 320, 576}}
	cfgs = withLarge(s, cfgs, cfg{4, 256, 4096, 2048}, cfg{2, 512, 7168, 2048})
	for i, c := range cfgs {
		t.Run(fmt.Sprintf("G=%d/Mmax=%d/N=%d/K=%d", c.g, c.mmax, c.n, c.k), func(t *testing.T) {
			s.shapeOK(t, c.n, c.k)
			s.limit(t, c.g*c.mmax*c.n*c.k)
			r := testutil.RNG(uint64(700 + i))
			masked := make([]int32, c.g)
			choices := []int32{0, 1, int32(c.mmax), int32(r.IntN(c.mmax + 1))}
			for g := range masked {
				masked[g] = choices[g%len(choices)]
			}
			var as, bs []*tensor.FP8Matrix
			var xs, ys [][]float32
			for g := 0; g < c.g; g++ {
				x, y := oracle.Randn(r, c.mmax*c.k), oracle.Randn(r, c.n*c.k)
				aq, _ := tensor.QuantizePerToken(x, c.mmax, c.k, tensor.QuantOptions{})
				bq, _ := tensor.QuantizePerBlock(y, c.n, c.k, tensor.QuantOptions{})
				as, bs, xs, ys = append(as, aq), append(bs, bq), append(xs, x), append(ys, y)
			}
			a, _ := tensor.Stack(as...)
			b, _ := tensor.Stack(bs...)
			for _, zero := range []bool{false, true} {
				d := oracle.NewOut(c.g*c.mmax, c.n, 0, false, sentinel)
				d.ZeroUnused = zero
				if err := gemm.GroupedMaskedNT(context.Background(), s.b, a, b, d, masked, c.mmax/2); err != nil {
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
					gd := oracle.MatMulNT64(mustDeq(as[g])[:mg*c.k], mustDeq(bs[g]), mg, c.n, c.k)
					gu := oracle.MatMulNT64(xs[g][:mg*c.k], ys[g], mg, c.n, c.k)
					checkGate(t, fmt.Sprintf("group %d (maskedM=%d) vs dequantized", g, mg), got[lo:lo+mg*c.n], gd, oracle.GateDequantized)
					checkGate(t, fmt.Sprintf("group %d (maskedM=%d) vs unquantized", g, mg), got[lo:lo+mg*c.n], gu, oracle.GateUnquantized)
				}
			}
		})
	}
}

func bf16Matrix(r *rand.Rand, rows, k int) (*gemm.BF16Matrix, []float32) {
	x := oracle.Randn(r, rows*k)
	data := make([]tensor.BF16, rows*k)
	tensor.EncodeBF16(data, x)
	m := &gemm.BF16Matrix{Rows: rows, K: k, Data: tensor.Host[tensor.BF16](data)}
	return m, x
}

func (s *suite) bf16(t *testing.T) {
	s.need(t, s.caps.BF16, "the BF16 GEMM")
	shapes := []oracle.Shape{{M: 64, N: 576, K: 1000}, {M: 7, N: 130, K: 129}}
	shapes = withLarge(s, shapes, oracle.Shape{M: 128, N: 2112, K: 7168})
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		s.shapeOK(t, sh.N, sh.K)
		s.limit(t, sh.M*sh.N*sh.K)
		r := testutil.RNG(uint64(800 + i))
		a, x := bf16Matrix(r, sh.M, sh.K)
		b, y := bf16Matrix(r, sh.N, sh.K)
		want := oracle.MatMulNT64(x, y, sh.M, sh.N, sh.K)
		for _, f32 := range []bool{false, true} {
			if f32 && !s.caps.OutF32 || !f32 && !s.caps.OutBF16 {
				continue
			}
			d := oracle.NewOut(sh.M, sh.N, 0, f32, sentinel)
			if err := gemm.BF16GemmNT(context.Background(), s.b, a, b, d); err != nil {
				t.Fatal(err)
			}
			checkGate(t, fmt.Sprintf("BF16 GEMM (f32 out %v)", f32), oracle.OutF64(d), want, oracle.GateBF16GEMM)
		}
	})
}

func (s *suite) edges(t *testing.T) {
	s.need(t, s.caps.OutF32 && s.caps.Accumulate, "float32 output with C")
	ctx := context.Background()
	t.Run("M=0", func(t *testing.T) {
		p := oracle.NewProblem(900, oracle.Shape{M: 0, N: 64, K: 256}, tensor.QuantOptions{})
		d := oracle.NewOut(0, 64, 0, true, sentinel)
		if err := gemm.FP8GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("N=0", func(t *testing.T) {
		p := oracle.NewProblem(901, oracle.Shape{M: 8, N: 0, K: 256}, tensor.QuantOptions{})
		d := oracle.NewOut(8, 0, 0, true, sentinel)
		if err := gemm.FP8GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("K=0", func(t *testing.T) {
		s.shapeOK(t, 8, 0)
		p := oracle.NewProblem(902, oracle.Shape{M: 4, N: 8, K: 0}, tensor.QuantOptions{})
		d := oracle.NewOut(4, 8, 0, true, sentinel)
		if err := gemm.FP8GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
		untouched(t, d, []int{0, 1, 2, 3}, 0)
		d = oracle.NewOut(4, 8, 0, true, sentinel)
		c := make([]float32, 32)
		for i := range c {
			c[i] = 7
		}
		d.C = tensor.Host[float32](c)
		if err := gemm.FP8GemmNT(ctx, s.b, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
		untouched(t, d, []int{0, 1, 2, 3}, 7)
	})
	// N=0 (or K=0 with N=0) needs no data however large M is, so the call
	// must return at once instead of walking 2^40 empty rows.
	t.Run("N=0/M=2^40", func(t *testing.T) {
		const huge = 1 << 40
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done := make(chan error, 4)
		go func() {
			a := &tensor.FP8Matrix{Rows: huge, ScaleRows: 1}
			b := &tensor.FP8Matrix{ScaleRows: tensor.ScaleBlock}
			done <- gemm.FP8GemmNT(ctx, s.b, a, b, &gemm.Out{Rows: huge, F32: tensor.Host[float32]{}})
			ga := &tensor.FP8Matrix{Groups: 1, Rows: huge, ScaleRows: 1}
			gb := &tensor.FP8Matrix{Groups: 1, ScaleRows: tensor.ScaleBlock}
			done <- gemm.GroupedMaskedNT(ctx, s.b, ga, gb, &gemm.Out{Rows: huge, F32: tensor.Host[float32]{}, ZeroUnused: true}, []int32{0}, 0)
			done <- gemm.GroupedMaskedNT(ctx, s.b, ga, gb, &gemm.Out{Rows: huge, F32: tensor.Host[float32]{}}, []int32{1 << 30}, 0)
			done <- gemm.BF16GemmNT(ctx, s.b, &gemm.BF16Matrix{Rows: huge}, &gemm.BF16Matrix{}, &gemm.Out{Rows: huge, F32: tensor.Host[float32]{}})
		}()
		for i := 0; i < 4; i++ {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, gemm.ErrUnsupported) {
					t.Fatalf("call %d: %v", i, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("call %d with M=2^40, N=0 did not return", i)
			}
		}
	})
}

func (s *suite) nan(t *testing.T) {
	sh := oracle.Shape{M: 16, N: 200, K: 384}
	s.shapeOK(t, sh.N, sh.K)
	p := oracle.NewProblem(950, sh, tensor.QuantOptions{})
	hostOf(p.A.Data)[3*sh.K+5] = tensor.E4M3NaNBits
	hostOf(p.B.Data)[150*sh.K+300] = tensor.E4M3NaNBits | 0x80
	d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
	s.gemmNT(t, p, d)
	for m := 0; m < sh.M; m++ {
		for n := 0; n < sh.N; n++ {
			v := hostOf(d.BF16)[m*sh.N+n]
			if want := m == 3 || n == 150; v.IsNaN() != want {
				t.Fatalf("D[%d,%d] = %v, NaN expected: %v", m, n, v.Float32(), want)
			}
		}
	}
}

func (s *suite) cancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := oracle.NewProblem(960, oracle.Shape{M: 64, N: 256, K: 256}, tensor.QuantOptions{})
	d := oracle.NewOut(64, 256, 0, false, 0)
	if err := gemm.FP8GemmNT(ctx, s.b, p.A, p.B, d); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled GemmNT returned %v, want context.Canceled", err)
	}
}

func (s *suite) agreesWithRef(t *testing.T) {
	for i, opt := range []tensor.QuantOptions{{}, {UE8M0: true}} {
		sh := oracle.Shape{M: 67, N: 330, K: 640}
		p := oracle.NewProblem(uint64(970+i), sh, opt)
		for _, f32 := range []bool{false, true} {
			if f32 && !s.caps.OutF32 || !f32 && !s.caps.OutBF16 || opt.UE8M0 && !s.caps.ScalesUE8M0 {
				continue
			}
			d1, d2 := oracle.NewOut(sh.M, sh.N, 0, f32, 0), oracle.NewOut(sh.M, sh.N, 0, f32, 0)
			if err := gemm.FP8GemmNT(context.Background(), s.b, p.A, p.B, d1); err != nil {
				t.Fatal(err)
			}
			if err := gemm.FP8GemmNT(context.Background(), ref.New(), p.A, p.B, d2); err != nil {
				t.Fatal(err)
			}
			checkGate(t, fmt.Sprintf("vs ref (ue8m0=%v f32=%v)", opt.UE8M0, f32), oracle.OutF64(d1), oracle.OutF64(d2), oracle.GateDequantized)
			if d := testutil.MaxAbsDiff(oracle.OutF64(d1), oracle.OutF64(d2)); f32 && d > 1e-3 {
				t.Errorf("max |cpu−ref| = %g", d)
			}
		}
	}
}
