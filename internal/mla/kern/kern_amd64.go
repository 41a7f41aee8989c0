//go:build amd64 && !noasm

package kern

import (
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
	"golang.org/x/sys/cpu"
)

// useAsm selects the AVX-512 kernels (F for the arithmetic; the BF16 and F16
// conversions need only F as well).
var useAsm = cpu.X86.HasAVX512F

//go:noescape
func kern4x64(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kern8x16(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func cvtBF16x16(dst *float32, src *uint16, n int)

//go:noescape
func cvtF16x16(dst *float32, src *uint16, n int)

//go:noescape
func dotx16(a, b *float32, n int) float32

//go:noescape
func axpyx16(alpha float32, x, y *float32, n int)

//go:noescape
func scalx16(alpha float32, x *float32, n int)

//go:noescape
func qkBF16x16(q *float32, base *uint16, offs *int64, n, d int, s *float32)

//go:noescape
func pvBF16x64(o, p *float32, base *uint16, offs *int64, n, dv int)

//go:noescape
func qkBF16x16x2(q *float32, base *uint16, offs *int64, n, d int, s *float32, ss int)

//go:noescape
func pvBF16x64x2(o, p *float32, base *uint16, offs *int64, n, dv, ps int)

//go:noescape
func exp2Subx16(x, sh, acc *float32, n int, coef *float32)

// exp2Coef holds ln(2)^k/k! for k = 0…7 (the Taylor series of 2^f) and the
// clamp −200 below which 2^x is 0 in float32.
var exp2Coef = [9]float32{
	1, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158,
	0.009618129107628477, 0.0013333558146428443, 0.00015403530393381606, 1.525273380405984e-05,
	-200,
}

// kc is the k-chunk of the 4×64 GEMM: a 96×64 float32 panel of B (24 KiB)
// stays in L1 while every row block of A passes over it.
const kc = 96

func gemm(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if !useAsm {
		gemmGo(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
		return
	}
	var mr, nr int
	var kern func(int, *float32, int, int, *float32, int, *float32, int, bool)
	switch {
	case n%64 == 0:
		mr, nr, kern = 4, 64, kern4x64
	case n%16 == 0:
		mr, nr, kern = 8, 16, kern8x16
	default:
		gemmGo(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
		return
	}
	mm := m - m%mr
	for j := 0; j < n; j += nr {
		for k0 := 0; k0 < k; k0 += kc {
			kk := min(kc, k-k0)
			ac := acc || k0 > 0
			for i := 0; i < mm; i += mr {
				kern(kk, &a[i*ars+k0*aks], ars, aks, &b[k0*ldb+j], ldb, &c[i*ldc+j], ldc, ac)
			}
		}
	}
	if mm < m {
		gemmGo(m-mm, n, k, a[mm*ars:], ars, aks, b, ldb, c[mm*ldc:], ldc, acc)
	}
}

func cvtBF16(dst []float32, src []tensor.BF16) {
	n := len(src) &^ 15
	if useAsm && n > 0 {
		cvtBF16x16(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	} else {
		n = 0
	}
	cvtBF16Go(dst[n:], src[n:])
}

func cvtF16(dst []float32, src []tensor.F16) {
	n := len(src) &^ 15
	if useAsm && n > 0 {
		cvtF16x16(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	} else {
		n = 0
	}
	cvtF16Go(dst[n:], src[n:])
}

func dot(a, b []float32) float32 {
	n := len(a) &^ 15
	if !useAsm || n == 0 {
		return dotGo(a, b)
	}
	return dotx16(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
}

func axpy(alpha float32, x, y []float32) {
	n := len(x) &^ 15
	if useAsm && n > 0 {
		axpyx16(alpha, &x[0], &y[0], n)
	} else {
		n = 0
	}
	axpyGo(alpha, x[n:], y[n:])
}

func scal(alpha float32, x []float32) {
	n := len(x) &^ 15
	if useAsm && n > 0 {
		scalx16(alpha, &x[0], n)
	} else {
		n = 0
	}
	scalGo(alpha, x[n:])
}

func exp2Sub(x, sh, acc []float32) {
	n := len(x) &^ 15
	if useAsm && n > 0 {
		exp2Subx16(&x[0], &sh[0], &acc[0], n, &exp2Coef[0])
	} else {
		n = 0
	}
	exp2SubGo(x[n:], sh[n:], acc[n:])
}

func qkBF16(q []float32, base []tensor.BF16, offs []int64, s []float32) {
	d := len(q)
	if !useAsm || d%16 != 0 || len(offs) == 0 {
		qkBF16Go(q, base, offs, s)
		return
	}
	s = s[:len(offs)]
	checkOffs(base, offs, d)
	qkBF16x16(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], len(offs), d, &s[0])
}

func pvBF16(o, p []float32, base []tensor.BF16, offs []int64) {
	dv := len(o)
	if !useAsm || dv%64 != 0 || len(offs) == 0 {
		pvBF16Go(o, p, base, offs)
		return
	}
	p = p[:len(offs)]
	checkOffs(base, offs, dv)
	pvBF16x64(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], len(offs), dv)
}

// checkOffs panics (like an index out of range would) if a row of w
// elements at an offset falls outside base, so the assembly never reads
// outside the slice.
func checkOffs(base []tensor.BF16, offs []int64, w int) {
	for _, o := range offs {
		if o < 0 || o+int64(w) > int64(len(base)) {
			panic("kern: row offset out of range")
		}
	}
}

func qkBF16x2(q []float32, d int, base []tensor.BF16, offs []int64, s []float32, ss int) {
	n := len(offs)
	if !useAsm || d%16 != 0 || n == 0 {
		qkBF16Go(q[:d], base, offs, s)
		qkBF16Go(q[d:2*d], base, offs, s[ss:])
		return
	}
	_, _ = q[2*d-1], s[ss+n-1]
	checkOffs(base, offs, d)
	qkBF16x16x2(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0], ss)
}

func pvBF16x2(o []float32, dv int, p []float32, ps int, base []tensor.BF16, offs []int64) {
	n := len(offs)
	if !useAsm || dv%64 != 0 || n == 0 {
		pvBF16Go(o[:dv], p, base, offs)
		pvBF16Go(o[dv:2*dv], p[ps:], base, offs)
		return
	}
	_, _ = o[2*dv-1], p[ps+n-1]
	checkOffs(base, offs, dv)
	pvBF16x64x2(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv, ps)
}
