package mlatest

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/mla/kern"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

// Bytes returns the case's memory traffic as FlashMLA's test counts it:
// (Σ L_i·h_kv·HeadDim + b·s_q·h_q·(HeadDim+HeadDimV)) × element size (the
// cache's; queries and outputs are counted at the same size, as upstream
// does with bf16 q and out).
func (in *Input) Bytes() float64 {
	c := in.Case
	var s float64
	for _, l := range in.Seqlens {
		s += float64(l)
	}
	return (s*float64(c.HKV*c.HeadDim) + float64(c.B*c.SQ*c.HQ*(c.HeadDim+c.HeadDimV))) * float64(c.DType.Size())
}

// GEMMAnchor returns a function computing C[m][n] = A[m][k]·B[k][n] in
// float32 with this repository's fastest GEMM (the mla cpu backend's
// micro-kernels, internal/mla/kern.Gemm), rows split over GOMAXPROCS
// goroutines: the compute anchor of the benchmarks (same FLOPs as a decode
// when m = b·s_q·h_q, n = s_k, k = 576+512).
func GEMMAnchor(m, n, k int) func() {
	r := testutil.RNG(5)
	a := testutil.Normal(r, m*k, 0, 1)
	b := testutil.Normal(r, k*n, 0, 1)
	c := make([]float32, m*n)
	return func() {
		w := runtime.GOMAXPROCS(0)
		chunk := ((m+w-1)/w + 3) &^ 3
		var wg sync.WaitGroup
		for i0 := 0; i0 < m; i0 += chunk {
			rows := min(chunk, m-i0)
			wg.Go(func() { kern.Gemm(rows, n, k, a[i0*k:], k, 1, b, n, c[i0*n:], n, false) })
		}
		wg.Wait()
	}
}

// MemcpyAnchor returns a function that copies bytes bytes with copy(),
// split over GOMAXPROCS goroutines: the bandwidth anchor of the benchmarks.
func MemcpyAnchor(bytes int) func() {
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
	return minTime(n, f)
}

// minTime returns the shortest of max(n, 1) timed runs of f, in seconds.
func minTime(n int, f func()) float64 {
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

// Measurement is one benchmark result: the decode's rates as FlashMLA
// counts them and its ratios to the anchors measured in the same run.
type Measurement struct {
	Case          string  `json:"case"`
	Backend       string  `json:"backend"`
	Seconds       float64 `json:"seconds"`
	GFLOPs        float64 `json:"gflop_per_s"`
	GBs           float64 `json:"gb_per_s"`
	GEMMGFLOPs    float64 `json:"gemm_gflop_per_s"`
	MemcpyGBs     float64 `json:"memcpy_gb_per_s"`
	RatioGEMM     float64 `json:"x_gemm"`
	RatioMemcpy   float64 `json:"x_memcpy"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Kernels       string  `json:"kernels"`
	Repetitions   int     `json:"reps"`
	AnchorRounds  int     `json:"rounds"`
	ScheduleParts int     `json:"parts"`
}

// Measure times be on the case against the anchors — GEMMAnchor on an
// equal-FLOP GEMM and MemcpyAnchor over the same bytes — alternating one
// run of each for rounds rounds (after one warm-up run of each) and keeping
// each one's minimum, so that all three see the same spells of interference
// on a shared machine. reps > 1 repeats each timed run reps times per round.
func Measure(be mla.Backend, c Case, reps, rounds int) (Measurement, error) {
	in, err := c.Build()
	if err != nil {
		return Measurement{}, err
	}
	c = in.Case
	parts := mla.NumSMParts(mla.H800SMs, c.SQ, c.HQ, c.HKV)
	s, err := mla.Plan(in.Seqlens, parts)
	if err != nil {
		return Measurement{}, err
	}
	opts := in.Opts
	opts.Schedule = s
	var runErr error
	run := func() {
		if _, _, err := mla.Decode(context.Background(), be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &opts); err != nil && runErr == nil {
			runErr = err
		}
	}
	flops, bytes := in.FLOPs(), in.Bytes()
	gemm := GEMMAnchor(c.B*c.SQ*c.HQ, max(c.SK, 1), c.HeadDim+c.HeadDimV)
	mem := MemcpyAnchor(int(bytes))
	run()
	gemm()
	mem()
	var t, tg, tm float64
	for r := range max(rounds, 1) {
		a, g, m := minTime(reps, run), minTime(reps, gemm), minTime(reps, mem)
		if r == 0 || a < t {
			t = a
		}
		if r == 0 || g < tg {
			tg = g
		}
		if r == 0 || m < tm {
			tm = m
		}
	}
	if runErr != nil {
		return Measurement{}, runErr
	}
	return Measurement{
		Case: c.Name(), Backend: be.Name(), Seconds: t,
		GFLOPs: flops / t / 1e9, GBs: bytes / t / 1e9,
		GEMMGFLOPs: flops / tg / 1e9, MemcpyGBs: bytes / tm / 1e9,
		RatioGEMM: tg / t, RatioMemcpy: tm / t,
		GOMAXPROCS: runtime.GOMAXPROCS(0), Kernels: kern.Level(),
		Repetitions: max(reps, 1), AnchorRounds: max(rounds, 1), ScheduleParts: parts,
	}, nil
}
