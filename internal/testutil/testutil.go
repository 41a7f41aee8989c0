// Package testutil holds the metrics and data generators that every
// Fireflyer package's checks share (calc_diff as upstream defines it,
// seeded normal and uniform draws), so that upstream thresholds keep their
// meaning across packages.
//
// Where it sits: the basement (docs/architecture.md). It imports no
// testing: the oracles gemm/oracle and mla/oracle, the fireflyer command and
// the demo use it as well as the conformance suites. Its one calc_diff is
// CalcDiff (CalcDiffShifted is DeepEP's +1-shifted variant).
package testutil

import (
	"math"
	"math/rand/v2"
)

// CalcDiff returns 1 − 2·Σxy / Σ(x²+y²), computed in float64: DeepGEMM's and
// FlashMLA's calc_diff (deep_gemm/testing/numeric.py, tests/test_flash_mla.py).
// It is 0 for identical inputs and for two all-zero inputs. x and y must have
// equal length; it panics otherwise (a test bug).
func CalcDiff(x, y []float64) float64 {
	if len(x) != len(y) {
		panic("testutil: CalcDiff of unequal lengths")
	}
	var xy, den float64
	for i := range x {
		xy += x[i] * y[i]
		den += x[i]*x[i] + y[i]*y[i]
	}
	if den == 0 {
		return 0
	}
	return 1 - 2*xy/den
}

// CalcDiffShifted is DeepEP's calc_diff (tests/utils.py): both inputs are
// shifted by +1 before the CalcDiff formula, so all-zero tensors compare
// cleanly.
func CalcDiffShifted(x, y []float64) float64 {
	if len(x) != len(y) {
		panic("testutil: CalcDiffShifted of unequal lengths")
	}
	var xy, den float64
	for i := range x {
		a, b := x[i]+1, y[i]+1
		xy += a * b
		den += a*a + b*b
	}
	if den == 0 {
		return 0
	}
	return 1 - 2*xy/den
}

// F64 converts a float32 slice to float64 for the metrics.
func F64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// RNG returns a deterministic generator for a test seed.
func RNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)) }

// Normal returns n samples of N(mean, std²) as float32.
func Normal(r *rand.Rand, n int, mean, std float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(mean + std*r.NormFloat64())
	}
	return out
}

// Uniform returns n samples uniform in [lo, hi) as float32.
func Uniform(r *rand.Rand, n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return out
}

// MaxAbsDiff returns max |x[i]−y[i]| (NaN if any pair holds a NaN).
func MaxAbsDiff(x, y []float64) float64 {
	m := 0.0
	for i := range x {
		d := math.Abs(x[i] - y[i])
		if d != d {
			return math.NaN()
		}
		m = max(m, d)
	}
	return m
}

// RandomTopK draws n rows of k distinct experts out of e, row-major
// [n][k], for routing benchmarks: one running permutation of the experts
// (starting as r.Perm(e)) of which each row takes the first k after a
// partial Fisher–Yates shuffle. It panics if k > e (a test bug).
func RandomTopK(r *rand.Rand, n, k, e int) []int32 {
	if k > e {
		panic("testutil: RandomTopK with k > e")
	}
	idx := make([]int32, n*k)
	perm := r.Perm(e)
	for t := 0; t < n; t++ {
		for j := 0; j < k; j++ {
			p := j + r.IntN(e-j)
			perm[j], perm[p] = perm[p], perm[j]
			idx[t*k+j] = int32(perm[j])
		}
	}
	return idx
}
