package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// BenchmarkSchedule times generating, lowering+checking and simulating
// DualPipe at PP=16 with 64 micro-batches; the metric x_generate is each
// step's time relative to generation, measured in the same run.
func BenchmarkSchedule(b *testing.B) {
	costs := SimOptions{Costs: OpCosts{F: 96, B: 133, W: 24, FB: 129}}
	var gen, low, sim time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s, err := DualPipe(16, 64)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		p, err := Lower(s)
		if err == nil {
			err = p.Check()
		}
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := Simulate(s, costs); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		gen += t1.Sub(t0)
		low += t2.Sub(t1)
		sim += t3.Sub(t2)
	}
	b.ReportMetric(float64(gen.Nanoseconds())/float64(b.N), "generate-ns/op")
	b.ReportMetric(float64(low)/float64(gen), "lower+check-x_generate")
	b.ReportMetric(float64(sim)/float64(gen), "simulate-x_generate")
}

// BenchmarkExecutor runs one training step of an MLP model through the
// executor (every rank a goroutine, channel transport) and the same work
// sequentially on one goroutine, in the same run; x_sequential is the
// executor's wall time over the sequential time. On a 2-core box the ratio
// measures the executor's overhead, not pipeline speed-up.
func BenchmarkExecutor(b *testing.B) {
	const h, f, rows = 64, 256, 8
	for _, tc := range []struct {
		m    Method
		n, c int
	}{{MethodDualPipe, 4, 16}, {MethodDualPipeV, 4, 16}, {Method1F1B, 4, 16}} {
		b.Run(fmt.Sprintf("%s-%dx%d", tc.m, tc.n, tc.c), func(b *testing.B) {
			s, _ := Generate(tc.m, tc.n, tc.c)
			prog, _ := Lower(s)
			r := testutil.RNG(1)
			total := s.Pipes * s.Micro
			in := make([][]float64, total)
			lab := make([][]float64, total)
			for i := range in {
				in[i] = testutil.F64(testutil.Normal(r, rows*h, 0, 1))
				lab[i] = testutil.F64(testutil.Normal(r, rows*h, 0, 1))
			}
			model := make([]*mlp, s.Stages)
			for i := range model {
				model[i] = newMLP(h, f, uint64(i))
			}
			ex := &Executor[[]float64]{
				Program: prog,
				Input:   func(pipe, micro int) ([]float64, error) { return in[pipe*s.Micro+micro], nil },
				Criterion: func(pipe, micro int, out []float64) (float64, []float64, error) {
					l, g := mseLoss(out, lab[pipe*s.Micro+micro])
					return l, g, nil
				},
			}
			ctx := context.Background()
			var seq, par time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ref := make([]*mlp, s.Stages)
				for j := range ref {
					ref[j] = model[j].clone()
				}
				t0 := time.Now()
				for mb := 0; mb < total; mb++ {
					x := in[mb]
					for _, st := range ref {
						x, _ = st.Forward(ctx, mb, x)
					}
					_, g := mseLoss(x, lab[mb])
					for j := len(ref) - 1; j >= 0; j-- {
						g, _ = ref[j].BackwardInput(ctx, mb, g)
						_ = ref[j].BackwardWeight(ctx, mb)
					}
				}
				t1 := time.Now()
				stages := make([][]Stage[[]float64], s.Ranks)
				for rk, ps := range s.Place {
					for _, p := range ps {
						stages[rk] = append(stages[rk], model[p.Stage].clone())
					}
				}
				t2 := time.Now()
				if _, err := ex.RunLocal(ctx, stages); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				seq += t1.Sub(t0)
				par += t3.Sub(t2)
			}
			b.ReportMetric(float64(par)/float64(seq), "x_sequential")
		})
	}
}
