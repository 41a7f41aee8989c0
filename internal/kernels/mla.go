package kernels

import (
	"context"
	"math"
	"runtime"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/internal/par"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The attention kernels of mla's cpu backend: a strided float32 GEMM with
// register-blocked micro-kernels (4×64 and 8×16 at AVX512, 4×16 at AVX2
// and NEON),
// BF16/F16 row widening, dot/axpy/scal, a vector exp2 for the online
// softmax and fused BF16 decode+dot / decode+axpy over cache rows read in
// place. The levels give results within float32 rounding of each other;
// each is deterministic.

// Gemm computes C[i][j] (= or +=, by acc) Σ_k A(i,k)·B[k][j] for i < m, j < n,
// where A(i,k) = a[i·ars + k·aks], B[k][j] = b[k·ldb + j] and C[i][j] =
// c[i·ldc + j]. The strided A lets callers multiply by a transposed matrix
// without copying it.
func (ks Set) Gemm(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
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
	ks.gemm(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
}

// CvtBF16 decodes src into dst[:len(src)].
func (ks Set) CvtBF16(dst []float32, src []tensor.BF16) {
	dst = dst[:len(src)]
	ks.cvtBF16(dst, src)
}

// CvtF16 decodes src into dst[:len(src)].
func (ks Set) CvtF16(dst []float32, src []tensor.F16) {
	dst = dst[:len(src)]
	ks.cvtF16(dst, src)
}

// Dot returns Σ a[i]·b[i] over len(a) (b must be as long).
func (ks Set) Dot(a, b []float32) float32 {
	b = b[:len(a)]
	return ks.dot(a, b)
}

// Axpy computes y[i] += alpha·x[i] over len(x) (y must be as long).
func (ks Set) Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	ks.axpy(alpha, x, y)
}

// Scal computes x[i] *= alpha.
func (ks Set) Scal(alpha float32, x []float32) { ks.scal(alpha, x) }

// Exp2Sub computes x[i] = 2^(x[i] − sh[i]) and acc[i] += x[i] over len(x)
// (sh and acc must be as long). 2^(−Inf) is exactly 0, and so is any result
// below float32's smallest subnormal; sh must be finite. The assembly uses a
// degree-7 polynomial (relative error < 1e-7).
func (ks Set) Exp2Sub(x, sh, acc []float32) {
	sh, acc = sh[:len(x)], acc[:len(x)]
	ks.exp2Sub(x, sh, acc)
}

// MaxInto computes dst[i] = max(dst[i], src[i]) over len(dst) (src must
// be as long). Inputs must not be NaN.
func (ks Set) MaxInto(dst, src []float32) {
	src = src[:len(dst)]
	ks.maxInto(dst, src)
}

// Exp2 returns 2^x in float32 (0 for −Inf).
func Exp2(x float32) float32 { return float32(math.Exp2(float64(x))) }

// QKOrder writes the query row q into dst[:len(q)] in the channel order in
// which this set's QK kernels (QKBF16, QKBF16x2) read it. At the AVX2 level
// with len(q) a multiple of 16, each block of 16 channels c0…c15 is stored
// as c0–c3, c8–c11, c4–c7, c12–c15: the lanes in which that kernel widens a
// 32-byte load of BF16 keys (interleaving with zero words), so that it
// needs no permute per key. At the other levels and lengths it is a copy.
// dst and q may be the same slice (dst must be at least as long as q).
// Ordering a query row once serves every call on it.
func (ks Set) QKOrder(dst, q []float32) {
	dst = dst[:len(q)]
	if !ks.qkUnpacked(len(q)) {
		copy(dst, q)
		return
	}
	var t [16]float32
	for b := 0; b < len(q); b += 16 {
		blk := q[b : b+16 : b+16]
		copy(t[0:4], blk[0:4])
		copy(t[4:8], blk[8:12])
		copy(t[8:12], blk[4:8])
		copy(t[12:16], blk[12:16])
		copy(dst[b:b+16], t[:])
	}
}

// qkUnpacked reports whether the QK kernel for rows of d channels reads
// the query in the unpacked lane order (see QKOrder).
func (ks Set) qkUnpacked(d int) bool { return ks.level == AVX2 && d%16 == 0 && d > 0 }

// QKBF16 computes s[i] = Σ_c q[c]·K_i[c] for the len(offs) BF16 rows K_i =
// base[offs[i] : offs[i]+len(q)], decoding on the fly (the bandwidth-bound
// path: no float32 copy of the keys is made). q is the query row in
// QKOrder's order (the natural order except at the AVX2 level).
func (ks Set) QKBF16(q []float32, base []tensor.BF16, offs []int64, s []float32) {
	ks.qkBF16(q, base, offs, s)
}

// PVBF16 computes o[c] += Σ_i p[i]·V_i[c] for the len(offs) BF16 rows V_i =
// base[offs[i] : offs[i]+len(o)].
func (ks Set) PVBF16(o, p []float32, base []tensor.BF16, offs []int64) { ks.pvBF16(o, p, base, offs) }

// QKBF16x2 is QKBF16 for two query rows q[:d] and q[d:2d] (each in
// QKOrder's order for d channels) sharing the keys (one pass over them):
// results in s[:len(offs)] and s[ss:ss+len(offs)].
func (ks Set) QKBF16x2(q []float32, d int, base []tensor.BF16, offs []int64, s []float32, ss int) {
	ks.qkBF16x2(q, d, base, offs, s, ss)
}

// PVBF16x2 is PVBF16 for two output rows o[:dv] and o[dv:2dv] with weights
// p[:len(offs)] and p[ps:ps+len(offs)] (one pass over the values).
func (ks Set) PVBF16x2(o []float32, dv int, p []float32, ps int, base []tensor.BF16, offs []int64) {
	ks.pvBF16x2(o, dv, p, ps, base, offs)
}

// exp2Coef holds ln(2)^k/k! for k = 0…7 (the Taylor series of 2^f) and the
// clamp −200 below which 2^x is 0 in float32.
var exp2Coef = [9]float32{
	1, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158,
	0.009618129107628477, 0.0013333558146428443, 0.00015403530393381606, 1.525273380405984e-05,
	-200,
}

// exp2CoefAVX2 is exp2Coef for the AVX2 and NEON kernels, which build 2^n from
// exponent bits: the low clamp −127, the flush-to-zero threshold −126 and
// the high clamp 127 follow the coefficients.
var exp2CoefAVX2 = [11]float32{
	1, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158,
	0.009618129107628477, 0.0013333558146428443, 0.00015403530393381606, 1.525273380405984e-05,
	-127, -126, 127,
}

// mlaKC is the k-chunk of the 4×64 GEMM: a 96×64 float32 panel of B (24 KiB)
// stays in L1 while every row block of A passes over it.
const mlaKC = 96

func (ks Set) gemm(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if ks.level == Generic {
		gemmGo(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
		return
	}
	var mr, nr int
	var kern func(int, *float32, int, int, *float32, int, *float32, int, bool)
	switch {
	case ks.level == AVX2 && n%16 == 0:
		mr, nr, kern = 4, 16, kern4x16avx2
	case ks.level == NEON && n%16 == 0:
		mr, nr, kern = 4, 16, kern4x16neon
	case ks.level == AVX2 || ks.level == NEON:
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
		for k0 := 0; k0 < k; k0 += mlaKC {
			kk := min(mlaKC, k-k0)
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

func (ks Set) cvtBF16(dst []float32, src []tensor.BF16) {
	n := 0
	switch {
	case ks.level == AVX512 && len(src) >= 16:
		n = len(src) &^ 15
		cvtBF16x16(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case ks.level == AVX2 && len(src) >= 8:
		n = len(src) &^ 7
		cvtBF16x8avx2(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case ks.level == NEON && len(src) >= 8:
		n = len(src) &^ 7
		cvtBF16x8neon(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	}
	cvtBF16Go(dst[n:], src[n:])
}

func (ks Set) cvtF16(dst []float32, src []tensor.F16) {
	n := 0
	switch {
	case ks.level == AVX512 && len(src) >= 16:
		n = len(src) &^ 15
		cvtF16x16(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case ks.level == AVX2 && ks.f16c && len(src) >= 8:
		n = len(src) &^ 7
		cvtF16x8avx2(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case ks.level == NEON && len(src) >= 8:
		n = len(src) &^ 7
		cvtF16x8neon(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	}
	cvtF16Go(dst[n:], src[n:])
}

func (ks Set) dot(a, b []float32) float32 {
	switch {
	case ks.level == AVX512 && len(a) >= 16:
		n := len(a) &^ 15
		return dotx16(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
	case ks.level == AVX2 && len(a) >= 8:
		n := len(a) &^ 7
		return dotx8avx2(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
	case ks.level == NEON && len(a) >= 16:
		n := len(a) &^ 15
		return dotx16neon(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
	}
	return dotGo(a, b)
}

func (ks Set) axpy(alpha float32, x, y []float32) {
	n := 0
	switch {
	case ks.level == AVX512 && len(x) >= 16:
		n = len(x) &^ 15
		axpyx16(alpha, &x[0], &y[0], n)
	case ks.level == AVX2 && len(x) >= 8:
		n = len(x) &^ 7
		axpyx8avx2(alpha, &x[0], &y[0], n)
	case ks.level == NEON && len(x) >= 16:
		n = len(x) &^ 15
		axpyx16neon(alpha, &x[0], &y[0], n)
	}
	axpyGo(alpha, x[n:], y[n:])
}

func (ks Set) scal(alpha float32, x []float32) {
	n := 0
	switch {
	case ks.level == AVX512 && len(x) >= 16:
		n = len(x) &^ 15
		scalx16(alpha, &x[0], n)
	case ks.level == AVX2 && len(x) >= 8:
		n = len(x) &^ 7
		scalx8avx2(alpha, &x[0], n)
	case ks.level == NEON && len(x) >= 16:
		n = len(x) &^ 15
		scalx16neon(alpha, &x[0], n)
	}
	scalGo(alpha, x[n:])
}

func (ks Set) exp2Sub(x, sh, acc []float32) {
	n := 0
	switch {
	case ks.level == AVX512 && len(x) >= 16:
		n = len(x) &^ 15
		exp2Subx16(&x[0], &sh[0], &acc[0], n, &exp2Coef[0])
	case ks.level == AVX2 && len(x) >= 8:
		n = len(x) &^ 7
		exp2Subx8avx2(&x[0], &sh[0], &acc[0], n, &exp2CoefAVX2[0])
	case ks.level == NEON && len(x) >= 4:
		n = len(x) &^ 3
		exp2Subx4neon(&x[0], &sh[0], &acc[0], n, &exp2CoefAVX2[0])
	}
	exp2SubGo(x[n:], sh[n:], acc[n:])
}

func (ks Set) qkBF16(q []float32, base []tensor.BF16, offs []int64, s []float32) {
	d, n := len(q), len(offs)
	switch {
	case n == 0:
		return
	case d == 0: // empty rows: every score is 0 (the assembly needs d > 0)
		qkBF16Go(q, base, offs, s)
	case ks.level == AVX512 && d%16 == 0:
		s = s[:n]
		checkOffs(base, offs, d)
		qkBF16x16(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0])
	case ks.qkUnpacked(d):
		s = s[:n]
		checkOffs(base, offs, d)
		qkBF16uavx2(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0])
	case ks.level == AVX2 && d%8 == 0 && d > 0:
		s = s[:n]
		checkOffs(base, offs, d)
		qkBF16x8avx2(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0])
	case ks.level == NEON && d%8 == 0 && d > 0:
		s = s[:n]
		checkOffs(base, offs, d)
		qkBF16x8neon(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0])
	default:
		qkBF16Go(q, base, offs, s)
	}
}

func (ks Set) pvBF16(o, p []float32, base []tensor.BF16, offs []int64) {
	dv, n := len(o), len(offs)
	switch {
	case n == 0 || dv == 0:
		return
	case ks.level == AVX512 && dv%128 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x128(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	case ks.level == AVX512 && dv%64 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x64(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	case ks.level == AVX2 && dv%64 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x64avx2(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	case ks.level == AVX2 && dv%32 == 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x32avx2(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
	case ks.level == NEON && dv%32 == 0 && dv > 0:
		p = p[:n]
		checkOffs(base, offs, dv)
		pvBF16x32neon(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv)
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

func (ks Set) qkBF16x2(q []float32, d int, base []tensor.BF16, offs []int64, s []float32, ss int) {
	n := len(offs)
	if ks.level != AVX512 || d%16 != 0 || d == 0 || n == 0 {
		ks.qkBF16(q[:d], base, offs, s)
		ks.qkBF16(q[d:2*d], base, offs, s[ss:])
		return
	}
	_, _ = q[2*d-1], s[ss+n-1]
	checkOffs(base, offs, d)
	qkBF16x16x2(&q[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, d, &s[0], ss)
}

func (ks Set) pvBF16x2(o []float32, dv int, p []float32, ps int, base []tensor.BF16, offs []int64) {
	n := len(offs)
	if ks.level != AVX512 || dv%64 != 0 || dv == 0 || n == 0 {
		ks.pvBF16(o[:dv], p, base, offs)
		ks.pvBF16(o[dv:2*dv], p[ps:], base, offs)
		return
	}
	_, _ = o[2*dv-1], p[ps+n-1]
	checkOffs(base, offs, dv)
	pvBF16x64x2(&o[0], &p[0], (*uint16)(unsafe.Pointer(&base[0])), &offs[0], n, dv, ps)
}

// VMAXPS returns its second (memory) operand when either is NaN and NEON's
// FMAX returns NaN, unlike the Go loop; the callers never pass NaN (masked scores are −Inf).
func (ks Set) maxInto(dst, src []float32) {
	n := 0
	switch {
	case ks.level == AVX512 && len(dst) >= 16:
		n = len(dst) &^ 15
		maxIntox16(&dst[0], &src[0], n)
	case ks.level == AVX2 && len(dst) >= 8:
		n = len(dst) &^ 7
		maxIntox8avx2(&dst[0], &src[0], n)
	case ks.level == NEON && len(dst) >= 16:
		n = len(dst) &^ 15
		maxIntox16neon(&dst[0], &src[0], n)
	}
	maxIntoGo(dst[n:], src[n:])
}

// The pure-Go kernels. They are the whole implementation under the noasm
// tag or without AVX-512, and the edge handlers of the assembly path.

// gemmGo is a register-blocked (4×4) pure-Go GEMM with the semantics of Gemm.
func gemmGo(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	i := 0
	for ; i+4 <= m; i += 4 {
		j := 0
		for ; j+4 <= n; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
			ai := i * ars
			for kk := range k {
				bo := kk*ldb + j
				bk := b[bo : bo+4 : bo+4]
				ao := ai + kk*aks
				a0, a1, a2, a3 := a[ao], a[ao+ars], a[ao+2*ars], a[ao+3*ars]
				b0, b1, b2, b3 := bk[0], bk[1], bk[2], bk[3]
				c00 += a0 * b0
				c01 += a0 * b1
				c02 += a0 * b2
				c03 += a0 * b3
				c10 += a1 * b0
				c11 += a1 * b1
				c12 += a1 * b2
				c13 += a1 * b3
				c20 += a2 * b0
				c21 += a2 * b1
				c22 += a2 * b2
				c23 += a2 * b3
				c30 += a3 * b0
				c31 += a3 * b1
				c32 += a3 * b2
				c33 += a3 * b3
			}
			store4(c[i*ldc+j:], c00, c01, c02, c03, acc)
			store4(c[(i+1)*ldc+j:], c10, c11, c12, c13, acc)
			store4(c[(i+2)*ldc+j:], c20, c21, c22, c23, acc)
			store4(c[(i+3)*ldc+j:], c30, c31, c32, c33, acc)
		}
		if j < n {
			gemmScalar(4, n-j, k, a[i*ars:], ars, aks, b[j:], ldb, c[i*ldc+j:], ldc, acc)
		}
	}
	if i < m {
		gemmScalar(m-i, n, k, a[i*ars:], ars, aks, b, ldb, c[i*ldc:], ldc, acc)
	}
}

func store4(c []float32, v0, v1, v2, v3 float32, acc bool) {
	c = c[:4:4]
	if acc {
		c[0] += v0
		c[1] += v1
		c[2] += v2
		c[3] += v3
		return
	}
	c[0], c[1], c[2], c[3] = v0, v1, v2, v3
}

func gemmScalar(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := range m {
		for j := range n {
			var s float32
			for kk := range k {
				s += a[i*ars+kk*aks] * b[kk*ldb+j]
			}
			if acc {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}

func cvtBF16Go(dst []float32, src []tensor.BF16) { tensor.DecodeBF16(dst, src) }

func cvtF16Go(dst []float32, src []tensor.F16) { tensor.DecodeF16(dst, src) }

func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scalGo(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func exp2SubGo(x, sh, acc []float32) {
	sh, acc = sh[:len(x)], acc[:len(x)]
	for i, v := range x {
		e := float32(math.Exp2(float64(v - sh[i])))
		x[i] = e
		acc[i] += e
	}
}

func qkBF16Go(q []float32, base []tensor.BF16, offs []int64, s []float32) {
	d := len(q)
	for i, o := range offs {
		k := base[o : o+int64(d)]
		var acc float32
		for c, v := range k {
			acc += q[c] * v.Float32()
		}
		s[i] = acc
	}
}

func pvBF16Go(o, p []float32, base []tensor.BF16, offs []int64) {
	dv := len(o)
	for i, off := range offs {
		pv := p[i]
		v := base[off : off+int64(dv)]
		for c, x := range v {
			o[c] += pv * x.Float32()
		}
	}
}

func maxIntoGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		if v > dst[i] {
			dst[i] = v
		}
	}
}

// Blocking of GemmPacked: a packed kc×nr panel of B (32 KiB at nr=64) stays
// in L1 while the mc×kc block of A (read in place) streams from L1/L2, and
// the packed kc×nc slab of B, reused across A blocks, stays in L2.
const (
	packKC = 128
	packMC = 64
	packNC = 512
)

// GemmPacked computes C[m][n] = A[m][k]·B[k][n] (row-major, leading
// dimensions lda, ldb, ldc) with Goto-style cache blocking and packing of
// B, row blocks split over up to GOMAXPROCS participants of the shared
// worker pool (internal/par). It is the compute anchor of the mla
// benchmarks ("the fastest float32 GEMM in the repo"); it uses the same
// micro-kernels as Gemm, so it needs m%4 == 0 and n%64 == 0 (n%16 == 0 at
// the AVX2 and NEON levels) to run them and falls back to Gemm otherwise. Each
// element of C is computed by one participant in a fixed order, so the
// result does not depend on how many take part.
func (ks Set) GemmPacked(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	nr := ks.packedNR()
	if nr == 0 || m%4 != 0 || n%nr != 0 || k == 0 {
		ks.Gemm(m, n, k, a, lda, 1, b, ldb, c, ldc, false)
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = b[(k-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	w := min(runtime.GOMAXPROCS(0), max(m/16, 1))
	rowsPer := ((m+w-1)/w + 3) &^ 3
	blocks := (m + rowsPer - 1) / rowsPer
	_ = par.For(context.Background(), blocks, w, func() (func(int), func()) {
		bp := make([]float32, packKC*packNC)
		return func(i int) {
			r0 := i * rowsPer
			ks.gemmPackedRows(min(rowsPer, m-r0), n, k, a[r0*lda:], lda, b, ldb, c[r0*ldc:], ldc, nr, bp)
		}, func() {}
	})
}

// packedNR returns the column width of the 4-row micro-kernel of
// GemmPacked (64 at AVX512, 16 at AVX2 and NEON), or 0 at the generic level.
func (ks Set) packedNR() int {
	switch ks.level {
	case AVX512:
		return 64
	case AVX2, NEON:
		return 16
	}
	return 0
}

func (ks Set) gemmPackedRows(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, nr int, bp []float32) {
	for jc := 0; jc < n; jc += packNC {
		nc := min(packNC, n-jc)
		for pc := 0; pc < k; pc += packKC {
			kc := min(packKC, k-pc)
			// B slab [kc][nc] → nc/nr panels of [kc][nr].
			for jb := 0; jb < nc; jb += nr {
				panel := bp[jb*kc : (jb+nr)*kc]
				for kk := range kc {
					copy(panel[kk*nr:(kk+1)*nr], b[(pc+kk)*ldb+jc+jb:])
				}
			}
			for ic := 0; ic < m; ic += packMC {
				mc := min(packMC, m-ic)
				// A is read in place: the micro-kernel broadcasts from four
				// row streams, and the mc×kc block stays in L1/L2 across jb.
				for jb := 0; jb < nc; jb += nr {
					for ib := 0; ib < mc; ib += 4 {
						ai, bi, ci := a[(ic+ib)*lda+pc:], bp[jb*kc:], c[(ic+ib)*ldc+jc+jb:]
						switch {
						case nr == 64:
							kern4x64(kc, &ai[0], lda, 1, &bi[0], nr, &ci[0], ldc, pc > 0)
						case ks.level == NEON:
							kern4x16neon(kc, &ai[0], lda, 1, &bi[0], nr, &ci[0], ldc, pc > 0)
						default:
							kern4x16avx2(kc, &ai[0], lda, 1, &bi[0], nr, &ci[0], ldc, pc > 0)
						}
					}
				}
			}
		}
	}
}
