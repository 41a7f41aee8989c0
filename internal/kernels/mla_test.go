package kernels

import (
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The kernels against float64 loops, over sizes that exercise the assembly
// blocks and the pure-Go edges.

func TestGemm(t *testing.T) { forEachSet(t, testGemm) }

func testGemm(t *testing.T, ks Set) {
	r := testutil.RNG(1)
	for _, sh := range [][3]int{{4, 64, 1}, {8, 16, 5}, {13, 64, 200}, {64, 128, 576}, {16, 512, 64}, {9, 48, 97}, {5, 7, 3}, {3, 130, 10}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, trans := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				a := testutil.Normal(r, m*k, 0, 1)
				ars, aks := k, 1
				if trans {
					ars, aks = 1, m
				}
				b := testutil.Normal(r, k*(n+3), 0, 1)
				ldb, ldc := n+3, n+1
				c := testutil.Normal(r, m*ldc, 0, 1)
				want := make([]float64, len(c))
				for i := range m {
					for j := range n {
						var s float64
						for kk := range k {
							s += float64(a[i*ars+kk*aks]) * float64(b[kk*ldb+j])
						}
						if acc {
							s += float64(c[i*ldc+j])
						}
						want[i*ldc+j] = s
					}
					for j := n; j < ldc; j++ {
						want[i*ldc+j] = float64(c[i*ldc+j])
					}
				}
				ks.Gemm(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
				for i, w := range want {
					if math.Abs(float64(c[i])-w) > 1e-5*(math.Sqrt(float64(k))+math.Abs(w)) {
						t.Fatalf("m%d n%d k%d trans %v acc %v: c[%d] = %v, want %v", m, n, k, trans, acc, i, c[i], w)
					}
				}
			}
		}
	}
}

func TestVectorKernels(t *testing.T) { forEachSet(t, testVectorKernels) }

func testVectorKernels(t *testing.T, ks Set) {
	r := testutil.RNG(2)
	for _, n := range []int{0, 1, 15, 16, 17, 64, 100, 576} {
		x := testutil.Normal(r, n, 0, 1)
		y := testutil.Normal(r, n, 0, 1)
		var d float64
		for i := range x {
			d += float64(x[i]) * float64(y[i])
		}
		if got := ks.Dot(x, y); math.Abs(float64(got)-d) > 1e-5*float64(n+1) {
			t.Errorf("Dot n=%d: %v, want %v", n, got, d)
		}
		y2 := append([]float32(nil), y...)
		ks.Axpy(0.5, x, y2)
		for i := range y2 {
			if want := y[i] + 0.5*x[i]; math.Abs(float64(y2[i]-want)) > 1e-6 {
				t.Fatalf("Axpy n=%d [%d]: %v, want %v", n, i, y2[i], want)
			}
		}
		mx := append([]float32(nil), y...)
		ks.MaxInto(mx, x)
		for i := range mx {
			if want := max(y[i], x[i]); mx[i] != want {
				t.Fatalf("MaxInto n=%d [%d]: %v, want %v", n, i, mx[i], want)
			}
		}
		ks.Scal(3, y2)
		for i := range y2 {
			if want := 3 * (y[i] + 0.5*x[i]); math.Abs(float64(y2[i]-want)) > 1e-5 {
				t.Fatalf("Scal n=%d [%d]: %v, want %v", n, i, y2[i], want)
			}
		}
		bf := make([]tensor.BF16, n)
		hf := make([]tensor.F16, n)
		tensor.EncodeBF16(bf, x)
		tensor.EncodeF16(hf, x)
		got := make([]float32, n)
		ks.CvtBF16(got, bf)
		for i := range got {
			if got[i] != bf[i].Float32() {
				t.Fatalf("CvtBF16 n=%d [%d]: %v, want %v", n, i, got[i], bf[i].Float32())
			}
		}
		ks.CvtF16(got, hf)
		for i := range got {
			if got[i] != hf[i].Float32() {
				t.Fatalf("CvtF16 n=%d [%d]: %v, want %v", n, i, got[i], hf[i].Float32())
			}
		}
	}
}

func TestExp2Sub(t *testing.T) { forEachSet(t, testExp2Sub) }

func testExp2Sub(t *testing.T, ks Set) {
	x := []float32{0, -0.5, 0.5, -1, -3.3, -20.25, -126.5, -149, -160, -1000, float32(math.Inf(-1)), 3, -0.0001, -7.7, -63.9, -0.49,
		-2, -100, -140.2, -1e-7}
	sh := make([]float32, len(x))
	for i := range sh {
		sh[i] = 0.25
	}
	want := make([]float64, len(x))
	for i, v := range x {
		want[i] = math.Exp2(float64(v) - 0.25)
	}
	acc := make([]float32, len(x))
	ks.Exp2Sub(x, sh, acc)
	for i, w := range want {
		got := float64(x[i])
		if w < 1e-37 { // subnormal range: only require the right tiny value or 0
			if got > 2e-37 || got < 0 {
				t.Errorf("exp2 [%d]: %g, want %g", i, got, w)
			}
			continue
		}
		if math.Abs(got-w) > 2e-7*w {
			t.Errorf("exp2 [%d]: %.9g, want %.9g (rel %.2g)", i, got, w, math.Abs(got-w)/w)
		}
		if float64(acc[i]) != got {
			t.Errorf("acc [%d] = %v, want %v", i, acc[i], got)
		}
	}
	if x[10] != 0 || x[9] != 0 {
		t.Errorf("2^-Inf = %v, 2^-1000 = %v, want exact 0", x[10], x[9])
	}
}

func TestQKPVBF16(t *testing.T) { forEachSet(t, testQKPVBF16) }

func testQKPVBF16(t *testing.T, ks Set) {
	r := testutil.RNG(3)
	for _, sh := range [][3]int{{576, 512, 5}, {64, 64, 1}, {48, 24, 3}, {576, 512, 64}, {272, 192, 9}, {112, 96, 4}, {40, 32, 3}, {32, 32, 2}, {80, 64, 3}, {0, 0, 3}} {
		d, dv, n := sh[0], sh[1], sh[2]
		base := make([]tensor.BF16, (n+2)*d)
		tensor.EncodeBF16(base, testutil.Normal(r, len(base), 0, 1))
		offs := make([]int64, n)
		for i := range offs {
			offs[i] = int64((n - 1 - i + 1) * d) // reversed, skipping row 0
		}
		q := testutil.Normal(r, d, 0, 1)
		p := testutil.Normal(r, n, 0, 1)
		s := make([]float32, n)
		qo := make([]float32, d)
		ks.QKOrder(qo, q)
		ks.QKBF16(qo, base, offs, s)
		o := testutil.Normal(r, dv, 0, 1)
		want := testutil.F64(o)
		ks.PVBF16(o, p, base, offs)
		for i, off := range offs {
			var w float64
			for c := range d {
				w += float64(q[c]) * float64(base[off+int64(c)].Float32())
			}
			if math.Abs(float64(s[i])-w) > 1e-4 {
				t.Fatalf("d%d: s[%d] = %v, want %v", d, i, s[i], w)
			}
			for c := range dv {
				want[c] += float64(p[i]) * float64(base[off+int64(c)].Float32())
			}
		}
		for c := range dv {
			if math.Abs(float64(o[c])-want[c]) > 1e-4 {
				t.Fatalf("dv%d: o[%d] = %v, want %v", dv, c, o[c], want[c])
			}
		}
	}
}

// TestQKOrder checks QKOrder's permutation exactly: the unpacked lane
// order at the AVX2 level for lengths that are multiples of 16, the
// identity otherwise, in place as well as into another slice.
func TestQKOrder(t *testing.T) { forEachSet(t, testQKOrder) }

func testQKOrder(t *testing.T, ks Set) {
	for _, d := range []int{0, 8, 16, 40, 64, 576} {
		q := make([]float32, d)
		for i := range q {
			q[i] = float32(i)
		}
		want := append([]float32(nil), q...)
		if ks.level == AVX2 && d%16 == 0 {
			for b := 0; b < d; b += 16 {
				for j, c := range []int{0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15} {
					want[b+j] = float32(b + c)
				}
			}
		}
		dst := make([]float32, d+1)
		dst[d] = -1
		ks.QKOrder(dst, q)
		ks.QKOrder(q, q)
		for i := range want {
			if dst[i] != want[i] || q[i] != want[i] {
				t.Fatalf("d%d [%d]: %v (in place %v), want %v", d, i, dst[i], q[i], want[i])
			}
		}
		if dst[d] != -1 {
			t.Fatalf("d%d: wrote past len(q)", d)
		}
	}
}

func TestQKPVBF16x2(t *testing.T) { forEachSet(t, testQKPVBF16x2) }

func testQKPVBF16x2(t *testing.T, ks Set) {
	r := testutil.RNG(4)
	for _, sh := range [][3]int{{576, 512, 7}, {64, 64, 1}, {128, 128, 64}, {0, 0, 3}} {
		d, dv, n := sh[0], sh[1], sh[2]
		base := make([]tensor.BF16, (n+1)*d)
		tensor.EncodeBF16(base, testutil.Normal(r, len(base), 0, 1))
		offs := make([]int64, n)
		for i := range offs {
			offs[i] = int64((n - i) * d)
		}
		q := testutil.Normal(r, 2*d, 0, 1)
		const ss = 70
		s2 := make([]float32, ss+n)
		for row := range 2 {
			ks.QKOrder(q[row*d:(row+1)*d], q[row*d:(row+1)*d])
		}
		ks.QKBF16x2(q, d, base, offs, s2, ss)
		s1 := make([]float32, n)
		for row := range 2 {
			ks.QKBF16(q[row*d:(row+1)*d], base, offs, s1)
			for i := range s1 {
				if math.Abs(float64(s1[i]-s2[row*ss+i])) > 1e-4 {
					t.Fatalf("d%d row %d: s[%d] = %v, single-row %v", d, row, i, s2[row*ss+i], s1[i])
				}
			}
		}
		p := testutil.Normal(r, ss+n, 0, 1)
		o2 := testutil.Normal(r, 2*dv, 0, 1)
		o1 := append([]float32(nil), o2...)
		ks.PVBF16x2(o2, dv, p, ss, base, offs)
		ks.PVBF16(o1[:dv], p[:n], base, offs)
		ks.PVBF16(o1[dv:], p[ss:ss+n], base, offs)
		for c := range o1 {
			if math.Abs(float64(o1[c]-o2[c])) > 1e-4 {
				t.Fatalf("dv%d: o[%d] = %v, single-row %v", dv, c, o2[c], o1[c])
			}
		}
	}
}

func TestGemmPacked(t *testing.T) { forEachSet(t, testGemmPacked) }

func testGemmPacked(t *testing.T, ks Set) {
	r := testutil.RNG(8)
	for _, sh := range [][3]int{{8, 128, 300}, {132, 576, 129}, {4, 64, 1}, {6, 70, 5}} {
		m, n, k := sh[0], sh[1], sh[2]
		a := testutil.Normal(r, m*k, 0, 1)
		b := testutil.Normal(r, k*n, 0, 1)
		c := testutil.Normal(r, m*n, 0, 1)
		ks.GemmPacked(m, n, k, a, k, b, n, c, n)
		for i := range m {
			for j := range n {
				var w float64
				for kk := range k {
					w += float64(a[i*k+kk]) * float64(b[kk*n+j])
				}
				if math.Abs(float64(c[i*n+j])-w) > 1e-4*math.Sqrt(float64(k))+1e-5*math.Abs(w) {
					t.Fatalf("m%d n%d k%d: c[%d][%d] = %v, want %v", m, n, k, i, j, c[i*n+j], w)
				}
			}
		}
	}
}
