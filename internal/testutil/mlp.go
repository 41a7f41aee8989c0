package testutil

import "math"

// Float is the element type of the MLP stage arithmetic: float32 or float64.
type Float interface{ ~float32 | ~float64 }

const geluK = 0.7978845608028654 // sqrt(2/π)

// GELU is the tanh form of GELU, 0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³))),
// evaluated in float64 and rounded once to T.
func GELU[T Float](a T) T {
	x := float64(a)
	return T(0.5 * x * (1 + math.Tanh(geluK*(x+0.044715*x*x*x))))
}

// GELUGrad is the derivative of GELU at a, evaluated in float64 and rounded
// once to T.
func GELUGrad[T Float](a T) T {
	x := float64(a)
	t := math.Tanh(geluK * (x + 0.044715*x*x*x))
	return T(0.5*(1+t) + 0.5*x*(1-t*t)*geluK*(1+3*0.044715*x*x))
}

// MLPForward runs upstream DualPipe's example stage, Linear(h, f, no bias) →
// GELU (tanh form) → Linear(f, h, no bias), on rows rows: x and y are
// row-major [rows, h], w1 is [f, h], w2 is [h, f]; it writes the
// pre-activations into a and their GELU into g (both [rows, f], kept for the
// backward) and the output into y. Every dot product accumulates in T in
// index order. The slices must have those lengths.
func MLPForward[T Float](h, f, rows int, x, w1, w2, a, g, y []T) {
	for i := 0; i < rows; i++ {
		ai, gi := a[i*f:(i+1)*f], g[i*f:(i+1)*f]
		matVec(ai, w1, x[i*h:(i+1)*h])
		for j, v := range ai {
			gi[j] = GELU(v)
		}
		matVec(y[i*h:(i+1)*h], w2, gi)
	}
}

// MLPBackwardInput is MLPForward's input gradient: from the output gradient
// dy [rows, h] and the saved pre-activations a [rows, f] it writes the
// pre-activation gradient into da [rows, f] (kept for MLPBackwardWeight) and
// the input gradient into dx [rows, h].
func MLPBackwardInput[T Float](h, f, rows int, dy, w1, w2, a, da, dx []T) {
	for i := 0; i < rows; i++ {
		dai := da[i*f : (i+1)*f]
		matTVec(dai, w2, dy[i*h:(i+1)*h])
		for j := range dai {
			dai[j] *= GELUGrad(a[i*f+j])
		}
		matTVec(dx[i*h:(i+1)*h], w1, dai)
	}
}

// matVec sets dst = w·x for w [len(dst), len(x)] row-major, each dot product
// accumulated in T in index order.
func matVec[T Float](dst, w, x []T) { strided(dst, w, x, len(x), 1) }

// matTVec sets dst = wᵀ·x for w [len(x), len(dst)] row-major, each dot
// product accumulated in T in index order.
func matTVec[T Float](dst, w, x []T) { strided(dst, w, x, 1, len(dst)) }

// strided sets dst[j] = Σᵢ x[i]·w[j·rs + i·cs], accumulated in T in order
// of i.
func strided[T Float](dst, w, x []T, rs, cs int) {
	for j := range dst {
		var acc T
		for i, v := range x {
			acc += v * w[j*rs+i*cs]
		}
		dst[j] = acc
	}
}

// MLPBackwardWeight is MLPForward's weight gradient: it adds dyᵀ·g to g2
// [h, f] and daᵀ·x to g1 [f, h], each entry's sum over the rows taken in row
// order and then added, so gradients accumulate across micro-batches in call
// order.
func MLPBackwardWeight[T Float](h, f, rows int, x, g, dy, da, g1, g2 []T) {
	addTransposed(rows, h, f, dy, g, g2)
	addTransposed(rows, f, h, da, x, g1)
}

// addTransposed adds pᵀ·q to out: p is [rows, n], q is [rows, m], out is [n, m].
func addTransposed[T Float](rows, n, m int, p, q, out []T) {
	for l := 0; l < n; l++ {
		for j := 0; j < m; j++ {
			var acc T
			for i := 0; i < rows; i++ {
				acc += p[i*n+l] * q[i*m+j]
			}
			out[l*m+j] += acc
		}
	}
}
