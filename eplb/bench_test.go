package eplb

import (
	"math"
	"runtime"
	"slices"
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

// anchor is the work the benchmarks are compared with: sorting a copy of
// each of the 58 layers' 256 loads with slices.Sort.
type anchor struct {
	w   [][]float32
	buf []float32
}

func newAnchor() *anchor { return &anchor{w: deepseekWeights(1), buf: make([]float32, 256)} }

func (a *anchor) run() {
	for _, row := range a.w {
		copy(a.buf, row)
		slices.Sort(a.buf)
	}
}

// measure runs f b.N times, each call followed by one run of the anchor, and
// reports the median time of f (µs/call), the median CPU time of the thread
// running f (cpu-µs/call, Linux; excludes time descheduled on a busy machine)
// and the median of the per-iteration ratios f/anchor (x-anchor). Interleaving keeps the ratio meaningful on a
// shared, noisy machine. ns/op counts both f and the anchor; read µs/call.
func measure(b *testing.B, f func()) {
	a := newAnchor()
	a.run()
	f()
	times := make([]float64, b.N)
	cpus := make([]float64, b.N)
	ratios := make([]float64, b.N)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, haveCPU := threadCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c0, _ := threadCPU()
		t0 := time.Now()
		f()
		t1 := time.Now()
		c1, _ := threadCPU()
		a.run()
		t2 := time.Now()
		times[i] = float64(t1.Sub(t0).Nanoseconds())
		cpus[i] = float64(c1 - c0)
		ratios[i] = times[i] / float64(t2.Sub(t1).Nanoseconds())
	}
	b.StopTimer()
	slices.Sort(times)
	slices.Sort(cpus)
	slices.Sort(ratios)
	b.ReportMetric(times[len(times)/2]/1e3, "µs/call")
	if haveCPU {
		b.ReportMetric(cpus[len(cpus)/2]/1e3, "cpu-µs/call")
	}
	b.ReportMetric(ratios[len(ratios)/2], "x-anchor")
}

// BenchmarkAnchor reports the anchor alone.
func BenchmarkAnchor(b *testing.B) {
	a := newAnchor()
	measure(b, a.run)
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
			var pl Planner
			var plan Plan
			measure(b, func() {
				if err := pl.RebalanceInto(&plan, w, bc.cfg); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("hierarchical-fresh", func(b *testing.B) {
		measure(b, func() {
			if _, err := Rebalance(w, deepseekConfig); err != nil {
				b.Fatal(err)
			}
		})
	})
}
