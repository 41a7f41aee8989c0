package cpu_test

import (
	"context"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/internal/anchor"
)

// BenchmarkPagedMQALogitsDecode runs the indexer decode step on the
// cpu backend: b=4, next_n=1, H=64, d=128 over 64k keys per request (block
// 64), and reports GFLOP/s (2·H·d per key and row) and x_gemm, the ratio to
// anchor.GEMM on the equal-FLOP float32 problem [H, d]·[d, b·64k], timed in
// alternating rounds in the same run (the OpenBLAS ratio comes from
// scripts/gemm-bench.sh -indexer), on the AVX-512 and the AVX2 kernel sets
// (the anchor on the same set).
func BenchmarkPagedMQALogitsDecode(b *testing.B) {
	in := oracle.NewPagedMQALogitsDecode(1, 4, 64, 128, 64, 65536)
	for _, set := range []string{"avx512", "avx2"} {
		be, err := cpu.NewBackend(cpu.Options{Kernels: set})
		if err != nil {
			continue // this CPU or build lacks the set
		}
		b.Run(set, func(b *testing.B) {
			logits := make([]float32, in.B*in.MaxContextLen)
			ctx := context.Background()
			run := func() {
				if err := gemm.PagedMQALogits(ctx, be, in, logits, true); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				run()
			}
			b.StopTimer()
			flops := oracle.PagedMQALogitsFLOPs(in)
			ts := anchor.Alternate(3, 2, run, anchor.GEMMOn(set, in.Heads, in.B*in.MaxContextLen, in.Cache.HeadDim))
			b.ReportMetric(flops/ts[0]/1e9, "GFLOP/s")
			b.ReportMetric(flops/ts[1]/1e9, "gemm_GFLOP/s")
			b.ReportMetric(ts[1]/ts[0], "x_gemm")
		})
	}
}

// BenchmarkMQALogitsPrefill runs fp8_mqa_logits at a prefill shape: M=512
// query rows, N=4096 keys, H=64, d=128, upstream's no-CP ranges (row i sees
// keys [0, i+N−M)), and reports GFLOP/s (2·H·d per scored pair) and x_gemm
// against anchor.GEMM on an equal-FLOP problem [M·H, d]·[d, N−M/2].
func BenchmarkMQALogitsPrefill(b *testing.B) {
	const m, n, h, d = 512, 4096, 64, 128
	p := oracle.NewMQALogitsProblem(1, m, n, h, d, false)
	be := cpu.New(cpu.Options{})
	logits := make([]float32, m*n)
	ctx := context.Background()
	run := func() {
		if err := gemm.MQALogits(ctx, be, p.In, logits, true); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		run()
	}
	b.StopTimer()
	var pairs float64
	for i := 0; i < m; i++ {
		lo, hi := p.In.Range(i)
		pairs += float64(hi - lo)
	}
	flops := 2 * h * d * pairs
	ts := anchor.Alternate(3, 1, run, anchor.GEMM(m*h, n-m/2, d))
	b.ReportMetric(flops/ts[0]/1e9, "GFLOP/s")
	b.ReportMetric(flops/ts[1]/1e9, "gemm_GFLOP/s")
	b.ReportMetric(ts[1]/ts[0], "x_gemm")
}
