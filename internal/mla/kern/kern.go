// Package kern holds the float32 compute kernels of the mla package's "cpu"
// backend: a strided GEMM with register-blocked micro-kernels, BF16/FP16 row
// conversion, dot/axpy/scal and a vector exp2 for the online softmax.
//
// On amd64 the micro-kernels are Go assembly, AVX-512F or else AVX2+FMA
// (detected at run time through golang.org/x/sys/cpu); elsewhere, or when
// built with the noasm tag, the pure-Go twins in generic.go run. Both give
// results within float32 rounding of each other; each is deterministic.
package kern

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// Accelerated reports whether assembly kernels (AVX-512 or AVX2) are in use.
func Accelerated() bool { return useAsm }

// Level names the kernels in use: "avx512", "avx2" or "go".
func Level() string { return levelNames[level] }

var levelNames = [...]string{levelGo: "go", levelAVX2: "avx2", levelAVX512: "avx512"}

// ForceLevel selects the kernels named (as Level returns them) if the CPU
// supports them, or the best it supports below, and returns a function that
// restores the previous choice. It is for tests that cover every path; it
// must not race with running kernels.
func ForceLevel(name string) (restore func()) {
	l := levelGo
	for i, n := range levelNames {
		if n == name {
			l = i
		}
	}
	prev := setLevel(l)
	return func() { setLevel(prev) }
}

// Gemm computes C[i][j] (= or +=, by acc) Σ_k A(i,k)·B[k][j] for i < m, j < n,
// where A(i,k) = a[i·ars + k·aks], B[k][j] = b[k·ldb + j] and C[i][j] =
// c[i·ldc + j]. The strided A lets callers multiply by a transposed matrix
// without copying it.
func Gemm(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	// Bounds: touch the last element of each operand once so that the
	// assembly never runs past a slice.
	_ = a[(m-1)*ars+(k-1)*aks]
	_ = b[(k-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	gemm(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
}

// CvtBF16 decodes src into dst[:len(src)].
func CvtBF16(dst []float32, src []tensor.BF16) {
	dst = dst[:len(src)]
	cvtBF16(dst, src)
}

// CvtF16 decodes src into dst[:len(src)].
func CvtF16(dst []float32, src []tensor.F16) {
	dst = dst[:len(src)]
	cvtF16(dst, src)
}

// Dot returns Σ a[i]·b[i] over len(a) (b must be as long).
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	return dot(a, b)
}

// Axpy computes y[i] += alpha·x[i] over len(x) (y must be as long).
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	axpy(alpha, x, y)
}

// Scal computes x[i] *= alpha.
func Scal(alpha float32, x []float32) { scal(alpha, x) }

// Exp2Sub computes x[i] = 2^(x[i] − sh[i]) and acc[i] += x[i] over len(x)
// (sh and acc must be as long). 2^(−Inf) is exactly 0, and so is any result
// below float32's smallest subnormal; sh must be finite. The assembly uses a
// degree-7 polynomial (relative error < 1e-7).
func Exp2Sub(x, sh, acc []float32) {
	sh, acc = sh[:len(x)], acc[:len(x)]
	exp2Sub(x, sh, acc)
}

// MaxInto computes dst[i] = max(dst[i], src[i]) over len(dst) (src must
// be as long). Inputs must not be NaN.
func MaxInto(dst, src []float32) {
	src = src[:len(dst)]
	maxInto(dst, src)
}

// Exp2 returns 2^x in float32 (0 for −Inf).
func Exp2(x float32) float32 { return float32(math.Exp2(float64(x))) }

// QKBF16 computes s[i] = Σ_c q[c]·K_i[c] for the len(offs) BF16 rows K_i =
// base[offs[i] : offs[i]+len(q)], decoding on the fly (the bandwidth-bound
// path: no float32 copy of the keys is made).
func QKBF16(q []float32, base []tensor.BF16, offs []int64, s []float32) { qkBF16(q, base, offs, s) }

// PVBF16 computes o[c] += Σ_i p[i]·V_i[c] for the len(offs) BF16 rows V_i =
// base[offs[i] : offs[i]+len(o)].
func PVBF16(o, p []float32, base []tensor.BF16, offs []int64) { pvBF16(o, p, base, offs) }

// QKBF16x2 is QKBF16 for two query rows q[:d] and q[d:2d] sharing the keys
// (one pass over them): results in s[:len(offs)] and s[ss:ss+len(offs)].
func QKBF16x2(q []float32, d int, base []tensor.BF16, offs []int64, s []float32, ss int) {
	qkBF16x2(q, d, base, offs, s, ss)
}

// PVBF16x2 is PVBF16 for two output rows o[:dv] and o[dv:2dv] with weights
// p[:len(offs)] and p[ps:ps+len(offs)] (one pass over the values).
func PVBF16x2(o []float32, dv int, p []float32, ps int, base []tensor.BF16, offs []int64) {
	pvBF16x2(o, dv, p, ps, base, offs)
}
