package gemmtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// RunTraining runs the conformance cases of the training calls
// (gemm.TrainingBackend: the NN/TN/TT layouts, the k-grouped weight
// gradients, the m-grouped BF16 GEMMs) against b, which must implement
// gemm.TrainingBackend. Like Run it checks upstream's calc_diff gates
// against the float64 products of the unquantized and of the dequantized
// operands; the layouts must moreover equal FP8GemmNT / BF16GemmNT of the
// same backend on the transposed operands bit for bit, and the two
// k-grouped FP8 forms must equal each other.
func RunTraining(t *testing.T, b gemm.Backend, opt Options) {
	if _, ok := b.(gemm.TrainingBackend); !ok {
		t.Fatalf("backend %s does not implement gemm.TrainingBackend", b.Name())
	}
	s := &suite{b: b, caps: b.Caps(), opt: opt}
	t.Run("LayoutsFP8", s.layoutsFP8)
	t.Run("LayoutsFP8Wgrad", s.layoutsWgrad)
	t.Run("LayoutsBF16", s.layoutsBF16)
	t.Run("KGroupedFP8", s.kGroupedFP8)
	t.Run("KGroupedBF16", s.kGroupedBF16)
	t.Run("MGroupedBF16Contiguous", s.mGroupedBF16Contiguous)
	t.Run("MGroupedBF16Masked", s.mGroupedBF16Masked)
	t.Run("TrainingNaN", s.trainingNaN)
	t.Run("TrainingBadInput", s.trainingBadInput)
	t.Run("TrainingCancel", s.trainingCancel)
	if b.Name() != "ref" {
		t.Run("TrainingAgreesWithRef", s.trainingAgreesWithRef)
	}
}

// LayoutShapes returns the shapes of the layout cases: short, scaled-down
// shapes with K and N not multiples of 128; in the long mode also
// upstream's backward shapes at a CPU-sized M (dgrad D [M,K] = dY [M,N]·W
// [N,K], wgrad D [N,K] = dYᵀ·X).
func LayoutShapes(long bool) []oracle.Shape {
	sh := []oracle.Shape{{M: 32, N: 264, K: 384}, {M: 7, N: 130, K: 200}, {M: 33, N: 136, K: 129}, {M: 1, N: 2112, K: 576}}
	if long {
		sh = append(sh, oracle.Shape{M: 256, N: 7168, K: 2048}, oracle.Shape{M: 256, N: 2112, K: 7168}, oracle.Shape{M: 576, N: 256, K: 7168})
	}
	return sh
}

func mustMN(t *testing.T, m *tensor.FP8Matrix) *tensor.FP8MNMatrix {
	t.Helper()
	mn, err := tensor.ToMNMajor(m)
	if err != nil {
		t.Fatal(err)
	}
	return mn
}

// sameOut fails t unless d1 and d2 hold the same values bit for bit.
func sameOut(t *testing.T, what string, d1, d2 *gemm.Out) {
	t.Helper()
	a, b := oracle.OutF64(d1), oracle.OutF64(d2)
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			t.Fatalf("%s: element %d = %v, NT gives %v", what, i, a[i], b[i])
		}
	}
}

func (s *suite) layoutsFP8(t *testing.T) {
	s.need(t, s.caps.ScalesF32, "float32 scales")
	shapes := LayoutShapes(s.large())
	ctx := context.Background()
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		s.shapeOK(t, sh.N, sh.K)
		s.limit(t, 3*sh.M*sh.N*sh.K)
		for _, ue := range []bool{false, true} {
			if ue && (!s.caps.ScalesUE8M0 || i%2 == 1) {
				continue
			}
			p := cachedProblem(uint64(2300+i), sh, tensor.QuantOptions{UE8M0: ue})
			for _, f32 := range []bool{false, true} {
				if f32 && !s.caps.OutF32 || !f32 && !s.caps.OutBF16 {
					continue
				}
				nt := oracle.NewOut(sh.M, sh.N, 0, f32, sentinel)
				if err := gemm.FP8GemmNT(ctx, s.b, p.A, p.B, nt); err != nil {
					t.Fatal(err)
				}
				amn, bmn := mustMN(t, p.A), mustMN(t, p.B)
				for _, l := range []struct {
					name string
					run  func(d *gemm.Out) error
				}{
					{"NN", func(d *gemm.Out) error { return gemm.FP8GemmNN(ctx, s.b, p.A, bmn, d) }},
					{"TN", func(d *gemm.Out) error { return gemm.FP8GemmTN(ctx, s.b, amn, bmn, d) }},
					{"TT", func(d *gemm.Out) error { return gemm.FP8GemmTT(ctx, s.b, amn, p.B, d) }},
				} {
					d := oracle.NewOut(sh.M, sh.N, 0, f32, sentinel)
					if err := l.run(d); err != nil {
						t.Fatalf("%s: %v", l.name, err)
					}
					what := fmt.Sprintf("%s ue8m0=%v f32=%v", l.name, ue, f32)
					sameOut(t, what, d, nt)
					got := oracle.OutF64(d)
					checkGate(t, what+" vs unquantized", got, cachedMatMulNT64(p.X, p.Y, sh.M, sh.N, sh.K), oracle.GateUnquantized)
					checkGate(t, what+" vs dequantized", got, cachedMatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K), oracle.GateDequantized)
				}
			}
		}
	})
}

// layoutsWgrad is upstream's wgrad case: both operands per-channel
// (1D1D), MN-major, float32 D accumulated onto C = randn·32.
func (s *suite) layoutsWgrad(t *testing.T) {
	s.need(t, s.caps.OutF32 && s.caps.Accumulate, "float32 output with C")
	ctx := context.Background()
	for i, sh := range []oracle.Shape{{M: 130, N: 72, K: 384}, {M: 64, N: 576, K: 200}} {
		t.Run(sh.String(), func(t *testing.T) {
			s.shapeOK(t, sh.N, sh.K)
			r := testutil.RNG(uint64(2350 + i))
			// The stored operands: dY [K, M] and X [K, N] (K = tokens).
			x, y := oracle.Randn(r, sh.K*sh.M), oracle.Randn(r, sh.K*sh.N)
			a, err := tensor.QuantizePerChannel(x, sh.K, sh.M, tensor.QuantOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := tensor.QuantizePerChannel(y, sh.K, sh.N, tensor.QuantOptions{})
			da, _ := tensor.DequantizeMN(a)
			db, _ := tensor.DequantizeMN(b)
			c := testutil.Normal(r, sh.M*sh.N, 0, 32)
			d := oracle.NewOut(sh.M, sh.N, 0, true, sentinel)
			d.C = tensor.Host[float32](c)
			if err := gemm.FP8GemmTN(ctx, s.b, a, b, d); err != nil {
				t.Fatal(err)
			}
			got := oracle.OutF64(d)
			checkGate(t, "wgrad vs dequantized", got, addC(oracle.MatMulNT64(da, db, sh.M, sh.N, sh.K), c, sh.M, sh.N, sh.N), oracle.GateF32)
			checkGate(t, "wgrad vs unquantized", got, addC(oracle.MatMulNT64(transposed(x, sh.K, sh.M), transposed(y, sh.K, sh.N), sh.M, sh.N, sh.K), c, sh.M, sh.N, sh.N), oracle.GateUnquantized)
		})
	}
}

func transposed[T any](x []T, rows, cols int) []T { return oracle.Transposed(x, rows, cols) }

// bf16MN returns m's values stored MN-major.
func bf16MN(m *gemm.BF16Matrix) *gemm.BF16MNMatrix {
	return &gemm.BF16MNMatrix{MN: m.Rows, K: m.K, Data: tensor.Host[tensor.BF16](transposed(hostOf(m.Data), m.Rows, m.K))}
}

func (s *suite) layoutsBF16(t *testing.T) {
	s.need(t, s.caps.BF16, "the BF16 GEMM")
	ctx := context.Background()
	shapes := []oracle.Shape{{M: 32, N: 264, K: 1000}, {M: 7, N: 130, K: 129}}
	shapes = withLarge(s, shapes, oracle.Shape{M: 128, N: 2112, K: 7168})
	eachShape(t, shapes, func(t *testing.T, i int, sh oracle.Shape) {
		s.shapeOK(t, sh.N, sh.K)
		s.limit(t, 3*sh.M*sh.N*sh.K)
		r := testutil.RNG(uint64(2400 + i))
		a, x := bf16Matrix(r, sh.M, sh.K)
		b, y := bf16Matrix(r, sh.N, sh.K)
		want := oracle.MatMulNT64(x, y, sh.M, sh.N, sh.K)
		amn, bmn := bf16MN(a), bf16MN(b)
		for _, f32 := range []bool{false, true} {
			if f32 && !s.caps.OutF32 || !f32 && !s.caps.OutBF16 {
				continue
			}
			nt := oracle.NewOut(sh.M, sh.N, 0, f32, sentinel)
			if err := gemm.BF16GemmNT(ctx, s.b, a, b, nt); err != nil {
				t.Fatal(err)
			}
			for _, l := range []struct {
				name string
				run  func(d *gemm.Out) error
			}{
				{"NN", func(d *gemm.Out) error { return gemm.BF16GemmNN(ctx, s.b, a, bmn, d) }},
				{"TN", func(d *gemm.Out) error { return gemm.BF16GemmTN(ctx, s.b, amn, bmn, d) }},
				{"TT", func(d *gemm.Out) error { return gemm.BF16GemmTT(ctx, s.b, amn, b, d) }},
			} {
				d := oracle.NewOut(sh.M, sh.N, 0, f32, sentinel)
				if err := l.run(d); err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				what := fmt.Sprintf("BF16 %s f32=%v", l.name, f32)
				sameOut(t, what, d, nt)
				checkGate(t, what, oracle.OutF64(d), want, oracle.GateBF16GEMM)
			}
		}
	})
}

// randomKs returns G group sizes drawn from [0.7, 1.3]·avg, aligned up to
// 128 as upstream's tests do, with group empty (if ≥ 0) set to 0.
func randomKs(r *rand.Rand, g, avg, empty int) []int {
	ks := make([]int, g)
	for i := range ks {
		k := max(1, int(float64(avg)*(0.7+0.6*r.Float64())))
		ks[i] = (k + gemm.KGroupAlign - 1) / gemm.KGroupAlign * gemm.KGroupAlign
	}
	if empty >= 0 {
		ks[empty] = 0
	}
	return ks
}

type kgCfg struct{ g, m, n, avgK int }

// String names the case in subtest names: groups, M, N and the mean K
// per group.
func (c kgCfg) String() string { return fmt.Sprintf("G=%d/M=%d/N=%d/K=%d", c.g, c.m, c.n, c.avgK) }

func (s *suite) kgCfgs() []kgCfg {
	cfgs := []kgCfg{{4, 136, 72, 256}, {3, 64, 264, 384}, {2, 7, 130, 128}}
	if s.opt.Quick {
		return cfgs[:1]
	}
	// Upstream's grid (G, M, N, K per group) ∈ {(4, 4096, 7168, 8192),
	// (8, 4096, 7168, 4096), (16, 4096, 7168, 2048), (·, 7168, 2048, ·)} at a
	// CPU-sized M and N, keeping G and the per-group K.
	return withLarge(s, cfgs, kgCfg{4, 256, 448, 8192}, kgCfg{8, 448, 128, 4096}, kgCfg{16, 256, 448, 2048})
}

func (s *suite) kGroupedFP8(t *testing.T) {
	s.need(t, s.caps.OutF32 && s.caps.Accumulate && s.caps.ScalesF32, "float32 output with C")
	ctx := context.Background()
	for i, c := range s.kgCfgs() {
		t.Run(c.String(), func(t *testing.T) {
			s.shapeOK(t, c.n, 128)
			r := testutil.RNG(uint64(2500 + i))
			// Two variants: all groups filled with float32 scales, and one
			// empty group with UE8M0 scales.
			for _, v := range []struct {
				empty int
				ue    bool
			}{{-1, false}, {int(r.Uint64() % uint64(c.g)), true}} {
				empty, ue := v.empty, v.ue
				ks := randomKs(r, c.g, c.avgK, empty)
				s.limit(t, 2*c.m*c.n*c.avgK*c.g)
				if ue && !s.caps.ScalesUE8M0 {
					continue
				}
				p := oracle.NewKGroupedProblem(uint64(2550+i), c.m, c.n, ks, tensor.QuantOptions{UE8M0: ue})
				what := fmt.Sprintf("ks=%v ue8m0=%v", ks, ue)
				d := oracle.NewOut(c.g*c.m, c.n, 0, true, sentinel)
				d.C = tensor.Host[float32](p.C)
				if err := gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, p.A, p.B, d, ks); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				got := oracle.OutF64(d)
				checkGate(t, what+" vs unquantized", got, oracle.KGroupedWant(p.X, p.Y, p.C, c.m, c.n, ks), oracle.GateUnquantized)
				dx, _ := tensor.DequantizeMN(p.A)
				dy, _ := tensor.DequantizeMN(p.B)
				checkGate(t, what+" vs dequantized", got, oracle.KGroupedWant(transposed(dx, c.m, len(dx)/max(c.m, 1)), transposed(dy, c.n, len(dy)/max(c.n, 1)), p.C, c.m, c.n, ks), oracle.GateF32)
				for g, k := range ks {
					if k == 0 && !slices.Equal(hostOf(d.F32)[g*c.m*c.n:(g+1)*c.m*c.n], p.C[g*c.m*c.n:(g+1)*c.m*c.n]) {
						t.Fatalf("%s: empty group %d: D[g] != C[g]", what, g)
					}
				}
				// The K-major form computes the same, bit for bit; in
				// place (C = D) too.
				d2 := oracle.NewOut(c.g*c.m, c.n, 0, true, 0)
				copy(hostOf(d2.F32), p.C)
				d2.C = d2.F32
				if err := gemm.KGroupedFP8GemmNTContiguous(ctx, s.b, p.ANT, p.BNT, d2, ks); err != nil {
					t.Fatalf("%s NT: %v", what, err)
				}
				sameOut(t, what+" NT vs TN", d2, d)
			}
		})
	}
}

func (s *suite) kGroupedBF16(t *testing.T) {
	s.need(t, s.caps.BF16 && s.caps.OutF32 && s.caps.Accumulate, "the BF16 GEMM with float32 output and C")
	ctx := context.Background()
	for i, c := range s.kgCfgs() {
		t.Run(c.String(), func(t *testing.T) {
			s.shapeOK(t, c.n, 128)
			r := testutil.RNG(uint64(2600 + i))
			ks := randomKs(r, c.g, c.avgK, c.g-1)
			s.limit(t, c.m*c.n*c.avgK*c.g)
			sum := 0
			for _, k := range ks {
				sum += k
			}
			x, y := oracle.Randn(r, sum*c.m), oracle.Randn(r, sum*c.n)
			cc := testutil.Normal(r, c.g*c.m*c.n, 0, 32)
			a := &gemm.BF16MNMatrix{MN: c.m, K: sum, Data: tensor.Host[tensor.BF16](bf16Of(x))}
			b := &gemm.BF16MNMatrix{MN: c.n, K: sum, Data: tensor.Host[tensor.BF16](bf16Of(y))}
			d := oracle.NewOut(c.g*c.m, c.n, 0, true, sentinel)
			d.C = tensor.Host[float32](cc)
			if err := gemm.KGroupedBF16GemmTNContiguous(ctx, s.b, a, b, d, ks); err != nil {
				t.Fatal(err)
			}
			checkGate(t, fmt.Sprintf("ks=%v", ks), oracle.OutF64(d), oracle.KGroupedWant(x, y, cc, c.m, c.n, ks), oracle.GateBF16GEMM)
			g := c.g - 1
			if !slices.Equal(hostOf(d.F32)[g*c.m*c.n:], cc[g*c.m*c.n:]) {
				t.Fatal("empty group: D[g] != C[g]")
			}
		})
	}
}

func bf16Of(x []float32) []tensor.BF16 {
	out := make([]tensor.BF16, len(x))
	tensor.EncodeBF16(out, x)
	return out
}

func (s *suite) mGroupedBF16Contiguous(t *testing.T) {
	s.need(t, s.caps.BF16 && s.caps.Contiguous, "the contiguous grouped BF16 GEMM")
	ctx := context.Background()
	type cfg struct{ g, m, n, k int }
	cfgs := withLarge(s, []cfg{{4, 80, 192, 384}, {3, 40, 264, 130}}, cfg{4, 384, 4096, 2048})
	for i, c := range cfgs {
		t.Run(fmt.Sprintf("G=%d/M=%d/N=%d/K=%d", c.g, c.m, c.n, c.k), func(t *testing.T) {
			s.shapeOK(t, c.n, c.k)
			s.limit(t, c.g*c.m*c.n*c.k)
			r := testutil.RNG(uint64(2700 + i))
			var idx []int32
			var seg [][2]int
			for g := 0; g < c.g; g++ {
				mg := int(float64(c.m) * (0.7 + 0.6*r.Float64()))
				if g == 1 {
					mg = 0
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
			a, x := bf16Matrix(r, mTot, c.k)
			b, y := bf16Matrix(r, c.g*c.n, c.k)
			for _, zero := range []bool{false, true} {
				d := oracle.NewOut(mTot, c.n, 0, false, sentinel)
				d.ZeroUnused = zero
				if err := gemm.MGroupedBF16GemmNTContiguous(ctx, s.b, a, b, d, idx); err != nil {
					t.Fatal(err)
				}
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
				got := oracle.OutF64(d)
				for g, sg := range seg {
					if sg[1] == 0 {
						continue
					}
					want := oracle.MatMulNT64(x[sg[0]*c.k:(sg[0]+sg[1])*c.k], y[g*c.n*c.k:(g+1)*c.n*c.k], sg[1], c.n, c.k)
					checkGate(t, fmt.Sprintf("group %d", g), got[sg[0]*c.n:(sg[0]+sg[1])*c.n], want, oracle.GateBF16GEMM)
				}
			}
		})
	}
}

func (s *suite) mGroupedBF16Masked(t *testing.T) {
	s.need(t, s.caps.BF16 && s.caps.Masked, "the masked grouped BF16 GEMM")
	ctx := context.Background()
	type cfg struct{ g, m, n, k int }
	// Upstream's masked grid (G, Mmax) ∈ {(32, 192), (6, 1024), (32, 20),
	// (6, 20)}, scaled to CPU sizes in N and K.
	cfgs := withLarge(s, []cfg{{6, 20, 264, 256}, {4, 64, 130, 300}}, cfg{32, 192, 576, 1024}, cfg{6, 1024, 576, 1024})
	for i, c := range cfgs {
		t.Run(fmt.Sprintf("G=%d/Mmax=%d/N=%d/K=%d", c.g, c.m, c.n, c.k), func(t *testing.T) {
			s.shapeOK(t, c.n, c.k)
			s.limit(t, c.g*c.m*c.n*c.k)
			r := testutil.RNG(uint64(2800 + i))
			masked := make([]int32, c.g)
			for g := range masked {
				masked[g] = int32(r.IntN(c.m + 1))
			}
			masked[0], masked[c.g-1] = 0, int32(c.m)
			a, x := bf16Matrix(r, c.g*c.m, c.k)
			b, y := bf16Matrix(r, c.g*c.n, c.k)
			for _, zero := range []bool{false, true} {
				d := oracle.NewOut(c.g*c.m, c.n, 0, true, sentinel)
				d.ZeroUnused = zero
				if err := gemm.MGroupedBF16GemmNTMasked(ctx, s.b, a, b, d, masked, c.m/2); err != nil {
					t.Fatal(err)
				}
				got := oracle.OutF64(d)
				fill := float32(sentinel)
				if zero {
					fill = 0
				}
				for g, mm := range masked {
					var rest []int
					for m := int(mm); m < c.m; m++ {
						rest = append(rest, g*c.m+m)
					}
					untouched(t, d, rest, fill)
					if mm == 0 {
						continue
					}
					lo := g * c.m
					want := oracle.MatMulNT64(x[lo*c.k:(lo+int(mm))*c.k], y[g*c.n*c.k:(g+1)*c.n*c.k], int(mm), c.n, c.k)
					checkGate(t, fmt.Sprintf("group %d (maskedM=%d)", g, mm), got[lo*c.n:(lo+int(mm))*c.n], want, oracle.GateBF16GEMM)
				}
			}
		})
	}
}

func (s *suite) trainingNaN(t *testing.T) {
	ctx := context.Background()
	t.Run("NN", func(t *testing.T) {
		sh := oracle.Shape{M: 16, N: 200, K: 384}
		s.shapeOK(t, sh.N, sh.K)
		p := oracle.NewProblem(2900, sh, tensor.QuantOptions{})
		a, _ := p.A.Clone()
		hostOf(a.Data)[3*sh.K+5] = tensor.E4M3NaNBits
		b := mustMN(t, p.B)
		hostOf(b.Data)[300*sh.N+150] = tensor.E4M3NaNBits | 0x80 // logical (n=150, k=300)
		d := oracle.NewOut(sh.M, sh.N, 0, false, sentinel)
		if err := gemm.FP8GemmNN(ctx, s.b, a, b, d); err != nil {
			t.Fatal(err)
		}
		for m := 0; m < sh.M; m++ {
			for n := 0; n < sh.N; n++ {
				if v, want := hostOf(d.BF16)[m*sh.N+n], m == 3 || n == 150; v.IsNaN() != want {
					t.Fatalf("D[%d,%d] = %v, NaN expected: %v", m, n, v.Float32(), want)
				}
			}
		}
	})
	t.Run("KGrouped", func(t *testing.T) {
		s.need(t, s.caps.OutF32, "float32 output")
		ks := []int{128, 256, 128}
		p := oracle.NewKGroupedProblem(2901, 9, 40, ks, tensor.QuantOptions{})
		hostOf(p.A.Data)[200*9+4] = tensor.E4M3NaNBits // group 1 (K 128..383), m = 4
		d := oracle.NewOut(3*9, 40, 0, true, sentinel)
		if err := gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, p.A, p.B, d, ks); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < 27; r++ {
			for n := 0; n < 40; n++ {
				if v, want := hostOf(d.F32)[r*40+n], r == 9+4; math.IsNaN(float64(v)) != want {
					t.Fatalf("D row %d col %d = %v, NaN expected: %v", r, n, v, want)
				}
			}
		}
	})
}

// plainBackend hides every optional interface of a backend.
type plainBackend struct{ gemm.Backend }

func (s *suite) trainingBadInput(t *testing.T) {
	ctx := context.Background()
	p := oracle.NewProblem(2950, oracle.Shape{M: 8, N: 16, K: 256}, tensor.QuantOptions{})
	bmn := mustMN(t, p.B)
	amn := mustMN(t, p.A)
	out := func(rows, cols int, f32 bool) *gemm.Out { return oracle.NewOut(rows, cols, 0, f32, 0) }
	kp := oracle.NewKGroupedProblem(2951, 8, 16, []int{128, 128}, tensor.QuantOptions{})
	badScale := *bmn
	badScale.ScaleMN = 3
	shortK := *bmn
	shortK.K, shortK.ScalesF32 = 128, trim(bmn.ScalesF32, 1)
	blockA := *kp.A
	blockA.ScaleMN = 128
	blockA.ScalesF32 = trim(kp.A.ScalesF32, 2)
	blockNT := *kp.ANT
	blockNT.ScaleRows = 128
	blockNT.ScalesF32 = trim(kp.ANT.ScalesF32, 2)
	a16, _ := bf16Matrix(testutil.RNG(2952), 8, 64)
	b16, _ := bf16Matrix(testutil.RNG(2953), 2*16, 64)
	cases := []struct {
		name string
		err  error
		call func() error
	}{
		{"nil backend", gemm.ErrUnsupported, func() error { return gemm.FP8GemmNN(ctx, nil, p.A, bmn, out(8, 16, false)) }},
		{"no TrainingBackend", gemm.ErrUnsupported, func() error {
			return gemm.FP8GemmTN(ctx, plainBackend{s.b}, amn, bmn, out(8, 16, false))
		}},
		{"no TrainingBackend k-grouped", gemm.ErrUnsupported, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, plainBackend{s.b}, kp.A, kp.B, out(16, 16, true), kp.Ks)
		}},
		{"NN nil b", gemm.ErrShape, func() error { return gemm.FP8GemmNN(ctx, s.b, p.A, nil, out(8, 16, false)) }},
		{"NN K mismatch", gemm.ErrShape, func() error { return gemm.FP8GemmNN(ctx, s.b, p.A, &shortK, out(8, 16, false)) }},
		{"NN bad ScaleMN", gemm.ErrScales, func() error { return gemm.FP8GemmNN(ctx, s.b, p.A, &badScale, out(8, 16, false)) }},
		{"TN bad d", gemm.ErrShape, func() error { return gemm.FP8GemmTN(ctx, s.b, amn, bmn, out(8, 15, false)) }},
		{"TT nil d", gemm.ErrShape, func() error { return gemm.FP8GemmTT(ctx, s.b, amn, p.B, nil) }},
		{"BF16 NN nil", gemm.ErrShape, func() error { return gemm.BF16GemmNN(ctx, s.b, nil, nil, out(8, 16, false)) }},
		{"BF16 TN K mismatch", gemm.ErrShape, func() error {
			return gemm.BF16GemmTN(ctx, s.b, &gemm.BF16MNMatrix{MN: 2, K: 3, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, 6))},
				&gemm.BF16MNMatrix{MN: 2, K: 4, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, 8))}, out(2, 2, false))
		}},
		{"BF16 TT short data", gemm.ErrShape, func() error {
			return gemm.BF16GemmTT(ctx, s.b, &gemm.BF16MNMatrix{MN: 2, K: 3, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, 5))}, a16, out(2, 8, false))
		}},
		{"BF16 MN stride", gemm.ErrShape, func() error {
			return gemm.BF16GemmTT(ctx, s.b, &gemm.BF16MNMatrix{MN: 2, K: 64, Stride: 1, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, 128))}, a16, out(2, 8, false))
		}},
		{"k-grouped sum", gemm.ErrIndices, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, out(16, 16, true), []int{128, 0})
		}},
		{"k-grouped unaligned", gemm.ErrIndices, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, out(16, 16, true), []int{100, 156})
		}},
		{"k-grouped negative", gemm.ErrIndices, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, out(16, 16, true), []int{384, -128})
		}},
		{"k-grouped len(ks) vs d", gemm.ErrShape, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, out(16, 16, true), []int{256})
		}},
		{"k-grouped BF16 out", gemm.ErrShape, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, out(16, 16, false), kp.Ks)
		}},
		{"k-grouped block scales", gemm.ErrScales, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, &blockA, kp.B, out(16, 16, true), kp.Ks)
		}},
		{"k-grouped nil d", gemm.ErrShape, func() error {
			return gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, nil, kp.Ks)
		}},
		{"k-grouped NT block scales", gemm.ErrScales, func() error {
			return gemm.KGroupedFP8GemmNTContiguous(ctx, s.b, &blockNT, kp.BNT, out(16, 16, true), kp.Ks)
		}},
		{"k-grouped NT stride", gemm.ErrShape, func() error {
			st := *kp.ANT
			st.Stride = st.K + 1
			return gemm.KGroupedFP8GemmNTContiguous(ctx, s.b, &st, kp.BNT, out(16, 16, true), kp.Ks)
		}},
		{"k-grouped BF16 sum", gemm.ErrIndices, func() error {
			a := &gemm.BF16MNMatrix{MN: 2, K: 256, Data: tensor.Host[tensor.BF16](make([]tensor.BF16, 512))}
			return gemm.KGroupedBF16GemmTNContiguous(ctx, s.b, a, a, out(2, 2, true), []int{128})
		}},
		{"m-grouped b rows", gemm.ErrShape, func() error {
			return gemm.MGroupedBF16GemmNTContiguous(ctx, s.b, a16, b16, out(8, 15, false), make([]int32, 8))
		}},
		{"m-grouped index", gemm.ErrIndices, func() error {
			return gemm.MGroupedBF16GemmNTContiguous(ctx, s.b, a16, b16, out(8, 16, false), []int32{0, 0, 0, 0, 2, 2, 2, 2})
		}},
		{"m-grouped len", gemm.ErrShape, func() error {
			return gemm.MGroupedBF16GemmNTContiguous(ctx, s.b, a16, b16, out(8, 16, false), make([]int32, 7))
		}},
		{"masked maskedM", gemm.ErrIndices, func() error {
			return gemm.MGroupedBF16GemmNTMasked(ctx, s.b, a16, b16, out(8, 16, false), []int32{5, 1}, 1)
		}},
		{"masked no groups", gemm.ErrShape, func() error {
			return gemm.MGroupedBF16GemmNTMasked(ctx, s.b, a16, b16, out(8, 16, false), nil, 1)
		}},
		{"masked uneven", gemm.ErrShape, func() error {
			return gemm.MGroupedBF16GemmNTMasked(ctx, s.b, a16, b16, out(8, 16, false), []int32{1, 1, 1}, 1)
		}},
		{"masked expectedM", gemm.ErrIndices, func() error {
			return gemm.MGroupedBF16GemmNTMasked(ctx, s.b, a16, b16, out(8, 16, false), []int32{1, 1}, -1)
		}},
	}
	for _, c := range cases {
		err := c.call()
		var ae *gemm.ArgError
		if !errors.Is(err, c.err) || !errors.As(err, &ae) || ae.Arg == "" {
			t.Errorf("%s: got %v, want an *ArgError wrapping %v", c.name, err, c.err)
		}
	}
}

func (s *suite) trainingCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := oracle.NewProblem(2960, oracle.Shape{M: 64, N: 256, K: 256}, tensor.QuantOptions{})
	if err := gemm.FP8GemmNN(ctx, s.b, p.A, mustMN(t, p.B), oracle.NewOut(64, 256, 0, false, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled FP8GemmNN returned %v", err)
	}
	kp := oracle.NewKGroupedProblem(2961, 64, 64, []int{256, 128}, tensor.QuantOptions{})
	if err := gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, oracle.NewOut(128, 64, 0, true, 0), kp.Ks); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled KGroupedFP8GemmTNContiguous returned %v", err)
	}
}

func (s *suite) trainingAgreesWithRef(t *testing.T) {
	ctx := context.Background()
	ks := []int{256, 0, 384}
	kp := oracle.NewKGroupedProblem(2970, 67, 90, ks, tensor.QuantOptions{})
	d1, d2 := oracle.NewOut(3*67, 90, 0, true, 0), oracle.NewOut(3*67, 90, 0, true, 0)
	d1.C, d2.C = tensor.Host[float32](kp.C), tensor.Host[float32](kp.C)
	if err := gemm.KGroupedFP8GemmTNContiguous(ctx, s.b, kp.A, kp.B, d1, ks); err != nil {
		t.Fatal(err)
	}
	if err := gemm.KGroupedFP8GemmTNContiguous(ctx, ref.New(), kp.A, kp.B, d2, ks); err != nil {
		t.Fatal(err)
	}
	checkGate(t, "k-grouped vs ref", oracle.OutF64(d1), oracle.OutF64(d2), oracle.GateF32)
}
