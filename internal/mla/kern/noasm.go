//go:build !amd64 || noasm

package kern

import "github.com/fireflyer-go/fireflyer/tensor"

const useAsm = false

func gemm(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	gemmGo(m, n, k, a, ars, aks, b, ldb, c, ldc, acc)
}
func cvtBF16(dst []float32, src []tensor.BF16)                          { cvtBF16Go(dst, src) }
func cvtF16(dst []float32, src []tensor.F16)                            { cvtF16Go(dst, src) }
func dot(a, b []float32) float32                                        { return dotGo(a, b) }
func axpy(alpha float32, x, y []float32)                                { axpyGo(alpha, x, y) }
func scal(alpha float32, x []float32)                                   { scalGo(alpha, x) }
func exp2Sub(x, sh, acc []float32)                                      { exp2SubGo(x, sh, acc) }
func qkBF16(q []float32, base []tensor.BF16, offs []int64, s []float32) { qkBF16Go(q, base, offs, s) }
func pvBF16(o, p []float32, base []tensor.BF16, offs []int64)           { pvBF16Go(o, p, base, offs) }

func qkBF16x2(q []float32, d int, base []tensor.BF16, offs []int64, s []float32, ss int) {
	qkBF16Go(q[:d], base, offs, s)
	qkBF16Go(q[d:2*d], base, offs, s[ss:])
}

func pvBF16x2(o []float32, dv int, p []float32, ps int, base []tensor.BF16, offs []int64) {
	pvBF16Go(o[:dv], p, base, offs)
	pvBF16Go(o[dv:2*dv], p[ps:], base, offs)
}

const (
	levelGo = iota
	levelAVX2
	levelAVX512
)

const level = levelGo

func setLevel(int) int { return levelGo }

func maxInto(dst, src []float32) { maxIntoGo(dst, src) }
