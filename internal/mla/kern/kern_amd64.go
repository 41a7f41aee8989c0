//go:build amd64 && !noasm

package kern

import (
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
	"golang.org/x/sys/cpu"
)

// The instruction-set levels the kernels come in.
const (
	levelGo     = iota // pure Go (generic.go)
	levelAVX2          // AVX2 + FMA + F16C (kern_avx2_amd64.s)
	levelAVX512        // AVX-512F (kern_amd64.s)
)

// level is the best level the CPU supports, detected once through
// golang.org/x/sys/cpu; tests lower it with setLevel to cover every path.
var level = detectLevel()

// useAsm reports whether any assembly level is in use.
var useAsm = level > levelGo

func detectLevel() int {
	switch {
	case cpu.X86.HasAVX512F:
		return levelAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX:
		return levelAVX2
	}
	return levelGo
}

// setLevel forces a level no higher than the CPU supports and returns the
// previous one (for tests).
func setLevel(l int) int {
	prev := level
	level = min(l, detectLevel())
	useAsm = level > levelGo
	return prev
}

func cpuidF16C() bool

//go:noescape
func kern4x16avx2(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func cvtBF16x8avx2(dst *float32, src *uint16, n int)

//go:noescape
func cvtF16x8avx2(dst *float32, src *uint16, n int)

//go:noescape
func dotx8avx2(a, b *float32, n int) float32

//go:noescape
func axpyx8avx2(alpha float32, x, y *float32, n int)

//go:noescape
func scalx8avx2(alpha float32, x *float32, n int)

//go:noescape
func exp2Subx8avx2(x, sh, acc *float32, n int, coef *float32)

//go:noescape
func qkBF16x8avx2(q *float32, base *uint16, offs *int64, n, d int, s *float32)

//go:noescape
func pvBF16x32avx2(o, p *float32, base *uint16, offs *int64, n, dv int)

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
func maxIntox16(dst, src *float32, n int)

//go:noescape
func maxIntox8avx2(dst, src *float32, n int)

//go:noescape
func pvBF16x128(o, p *float32, base *uint16, offs *int64, n, dv int)

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

// exp2CoefAVX2 is exp2Coef for the AVX2 kernel, which builds 2^n from
// exponent bits: the low clamp −127, the flush-to-zero threshold −126 and
// the high clamp 127 follow the coefficients.
var exp2CoefAVX2 = [11]float32{
	1, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158,
	0.009618129107628477, 0.0013333558146428443, 0.00015403530393381606, 1.525273380405984e-05,
	-127, -126, 127,
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
	case level == levelAVX2 && n%16 == 0:
		mr, nr, kern = 4, 16, kern4x16avx2
	case level == levelAVX2:
		gemmGo(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
		return
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
	n := 0
	switch {
	case level == levelAVX512 && len(src) >= 16:
		n = len(src) &^ 15
		cvtBF16x16(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case level == levelAVX2 && len(src) >= 8:
		n = len(src) &^ 7
		cvtBF16x8avx2(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	}
	cvtBF16Go(dst[n:], src[n:])
}

func cvtF16(dst []float32, src []tensor.F16) {
	n := 0
	switch {
	case level == levelAVX512 && len(src) >= 16:
		n = len(src) &^ 15
		cvtF16x16(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case level == levelAVX2 && hasF16C && len(src) >= 8:
		n = len(src) &^ 7
		cvtF16x8avx2(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	}
	cvtF16Go(dst[n:], src[n:])
}

// hasF16C reports VCVTPH2PS support (CPUID.1:ECX bit 29), which
// golang.org/x/sys/cpu does not export; the AVX2 F16 conversion needs it.
var hasF16C = cpuidF16C()

func dot(a, b []float32) float32 {
	switch {
	case level == levelAVX512 && len(a) >= 16:
		n := len(a) &^ 15
		return dotx16(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
	case level == levelAVX2 && len(a) >= 8:
		n := len(a) &^ 7
		return dotx8avx2(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
	}
	return dotGo(a, b)
}

func axpy(alpha float32, x, y []float32) {
	n := 0
	switch {
	case level == levelAVX512 && len(x) >= 16:
		n = len(x) &^ 15
		axpyx16(alpha, &x[0], &y[0], n)
	case level == levelAVX2 && len(x) >= 8:
		n = len(x) &^ 7
		axpyx8avx2(alpha, &x[0], &y[0], n)
	}
	axpyGo(alpha, x[n:], y[n:])
}

func scal(alpha float32, x []float32) {
	n := 0
	switch {
	case level == levelAVX512 && len(x) >= 16:
		n = len(x) &^ 15
		scalx16(alpha, &x[0], n)
	case level == levelAVX2 && len(x) >= 8:
		n = len(x) &^ 7
		scalx8avx2(alpha, &x[0], n)
	}
	scalGo(alpha, x[n:])
}

func exp2Sub(x, sh, acc []float32) {
	n := 0
	switch {
	case level == levelAVX512 && len(x) >= 16:
		n = len(x) &^ 15
		exp2Subx16(&x[0], &sh[0], &acc[0], n, &exp2Coef[0])
	case level == levelAVX2 && len(x) >= 8:
		n = len(x) &^ 7
		exp2Subx8avx2(&x[0], &sh[0], &acc[0], n, &exp2CoefAVX2[0])
	}
	exp2SubGo(x[n:], sh[n:], acc[n:])
}

func qkBF16(q []float32, base []tensor.BF16, offs []int64, s []float32) {
	d, n := len(q), len(offs)
	switch {
	case n == 0:
		return
	case level == levelAVX512 && d%16 == 0:
		s = s[:n]
		checkOffs(base, offs, d)
		qkBF16x16(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0])
	case level == levelAVX2 && d%8 == 0:
		s = s[:n]
		checkOffs(base, offs, d)
		qkBF16x8avx2(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0])
	default:
		qkBF16Go(q, base, offs, s)
	}
}

func pvBF16(o, p []float32, base []tensor.BF16, offs []int64) {
	dv, n := len(o), len(offs)
	switch {
	case n == 0:
		return
	case level == levelAVX512 && dv%128 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x128(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	case level == levelAVX512 && dv%64 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x64(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	case level == levelAVX2 && dv%32 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x32avx2(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	default:
		pvBF16Go(o, p, base, offs)
	}
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
	if level != levelAVX512 || d%16 != 0 || n == 0 {
		qkBF16(q[:d], base, offs, s)
		qkBF16(q[d:2*d], base, offs, s[ss:])
		return
	}
	_, _ = q[2*d-1], s[ss+n-1]
	checkOffs(base, offs, d)
	qkBF16x16x2(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0], ss)
}

func pvBF16x2(o []float32, dv int, p []float32, ps int, base []tensor.BF16, offs []int64) {
	n := len(offs)
	if level != levelAVX512 || dv%64 != 0 || n == 0 {
		pvBF16(o[:dv], p, base, offs)
		pvBF16(o[dv:2*dv], p[ps:], base, offs)
		return
	}
	_, _ = o[2*dv-1], p[ps+n-1]
	checkOffs(base, offs, dv)
	pvBF16x64x2(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv, ps)
}

// VMAXPS returns its second (memory) operand when either is NaN, unlike
// the Go loop; the callers never pass NaN (masked scores are −Inf).
func maxInto(dst, src []float32) {
	n := 0
	switch {
	case level == levelAVX512 && len(dst) >= 16:
		n = len(dst) &^ 15
		maxIntox16(&dst[0], &src[0], n)
	case level == levelAVX2 && len(dst) >= 8:
		n = len(dst) &^ 7
		maxIntox8avx2(&dst[0], &src[0], n)
	}
	maxIntoGo(dst[n:], src[n:])
}
