package eplb

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// DeepSeek-V3 production shape: 58 MoE layers × 256 routed experts in 8
// groups, 288 physical slots (32 redundant) on 4 nodes × 8 GPUs.
var deepseekConfig = Config{Replicas: 288, Groups: 8, Nodes: 4, GPUs: 32}

// deepseekWeights returns skewed integer token counts (log-normal, σ = 1),
// the same for every call with the same seed.
func deepseekWeights(seed uint64) [][]float32 {
	r := testutil.RNG(seed)
	w := make([][]float32, 58)
	for l := range w {
		z := testutil.Normal(r, 256, 0, 1)
		w[l] = make([]float32, 256)
		for e, x := range z {
			w[l][e] = float32(math.Round(1000 * math.Exp(float64(x))))
		}
	}
	return w
}

// anchorNs is the time of the anchor: sorting each of the 58 layers' 256
// loads (a copy) with slices.Sort. Measured once per process, in the same run
// as the benchmarks, so ratios to it survive a noisy shared machine.
var anchorNs = sync.OnceValue(func() float64 {
	w := deepseekWeights(1)
	buf := make([]float32, 256)
	run := func(n int) time.Duration {
		start := time.Now()
		for range n {
			for _, row := range w {
				copy(buf, row)
				slices.Sort(buf)
			}
		}
		return time.Since(start)
	}
	run(20) // warm up
	best := time.Duration(math.MaxInt64)
	for range 5 {
		best = min(best, run(200))
	}
	return float64(best.Nanoseconds()) / 200
})

func report(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/1e3, "µs/call")
	b.ReportMetric(ns/anchorNs(), "x-anchor")
}

// BenchmarkAnchor reports the anchor itself (58 sorts of 256 float32).
func BenchmarkAnchor(b *testing.B) {
	b.ReportMetric(anchorNs()/1e3, "µs/call")
}

func BenchmarkRebalanceDeepSeekV3(b *testing.B) {
	w := deepseekWeights(1)
	prevPlan, err := Rebalance(deepseekWeights(2), deepseekConfig)
	if err != nil {
		b.Fatal(err)
	}
	global := deepseekConfig
	global.Policy = Global
	noDup := deepseekConfig
	noDup.NoDuplicates = true
	migrate := deepseekConfig
	migrate.Previous = prevPlan
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"hierarchical", deepseekConfig},
		{"global", global},
		{"hierarchical-noduplicates", noDup},
		{"hierarchical-previous", migrate},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_ = anchorNs()
			var pl Planner
			var plan Plan
			if err := pl.RebalanceInto(&plan, w, bc.cfg); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := pl.RebalanceInto(&plan, w, bc.cfg); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
	b.Run("hierarchical-fresh", func(b *testing.B) {
		_ = anchorNs()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Rebalance(w, deepseekConfig); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}
