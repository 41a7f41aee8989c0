// Package anchor holds the same-run anchors the benchmarks divide by: a
// float32 GEMM on this repository's fastest kernel (the compute anchor) and
// a parallel copy (the bandwidth anchor), with the best-of-n timer that
// survives a shared machine. "fireflyer mla bench", mla/oracle.Measure and
// the packages' benchmarks report their rates as ratios to these.
//
// It is part of internal/, the basement: it imports only the kernel package
// and internal/testutil.
package anchor

import (
	"runtime"
	"sync"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// GEMM returns a function computing C[m][n] = A[m][k]·B[k][n] in
// float32 with this repository's fastest GEMM, the kernels' GemmPacked on
// the best kernel set: the cpu backend's micro-kernels under Goto-style
// packing and cache blocking, row blocks split over the shared worker pool.
// It is the compute anchor of the benchmarks (same FLOPs as a decode when
// m = b·s_q·h_q, n = s_k, k = 576+512).
func GEMM(m, n, k int) func() { return GEMMOn("", m, n, k) }

// GEMMOn is GEMM on the kernel set named as the backends' options name
// them ("avx512", "avx2", "neon", "go"); "" or a set this machine cannot run means
// the best one.
func GEMMOn(set string, m, n, k int) func() {
	ks, err := kernels.ForName(set)
	if err != nil {
		ks = kernels.Best()
	}
	r := testutil.RNG(5)
	a := testutil.Normal(r, m*k, 0, 1)
	b := testutil.Normal(r, k*n, 0, 1)
	c := make([]float32, m*n)
	return func() { ks.GemmPacked(m, n, k, a, k, b, n, c, n) }
}

// Memcpy returns a function that copies bytes bytes with copy(),
// split over GOMAXPROCS goroutines: the bandwidth anchor of the benchmarks.
func Memcpy(bytes int) func() {
	src := make([]byte, bytes)
	for i := range src {
		src[i] = byte(i)
	}
	dst := make([]byte, bytes)
	return func() {
		w := runtime.GOMAXPROCS(0)
		chunk := (bytes + w - 1) / w
		var wg sync.WaitGroup
		for i0 := 0; i0 < bytes; i0 += chunk {
			e := min(i0+chunk, bytes)
			wg.Go(func() { copy(dst[i0:e], src[i0:e]) })
		}
		wg.Wait()
	}
}

// BestOf runs f once to warm up, then n times, and returns the shortest
// time in seconds (on a shared machine the minimum is the run least
// disturbed by other processes).
func BestOf(n int, f func()) float64 {
	f()
	return MinTime(n, f)
}

// Alternate runs each of fs once to warm up, then in max(rounds, 1) rounds
// times each in turn as MinTime(reps, f) and returns each one's shortest
// time over the rounds, in seconds, in the order of fs. Alternating the run
// with its anchors keeps a shared machine's load changes from favouring one
// of them.
func Alternate(rounds, reps int, fs ...func()) []float64 {
	for _, f := range fs {
		f()
	}
	best := make([]float64, len(fs))
	for r := range max(rounds, 1) {
		for i, f := range fs {
			if t := MinTime(reps, f); r == 0 || t < best[i] {
				best[i] = t
			}
		}
	}
	return best
}

// MinTime returns the shortest of max(n, 1) timed runs of f, in seconds.
func MinTime(n int, f func()) float64 {
	n = max(n, 1)
	best := 0.0
	for i := range n {
		t0 := time.Now()
		f()
		if d := time.Since(t0).Seconds(); i == 0 || d < best {
			best = d
		}
	}
	return best
}
