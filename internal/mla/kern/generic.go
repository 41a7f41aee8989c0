package kern

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

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

func cvtBF16Go(dst []float32, src []tensor.BF16) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = math.Float32frombits(uint32(v) << 16)
	}
}

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
			acc += q[c] * math.Float32frombits(uint32(v)<<16)
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
			o[c] += pv * math.Float32frombits(uint32(x)<<16)
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
