package mla_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
)

// BenchmarkSparseDecode runs the sparse decode size through the cpu
// sparse backend: b=4, s_q=1, h_q=128, topk=2048 over a 64k-token FP8 cache
// (16384 tokens per request, page 64, sink on), and reports the same-run
// ratios of oracle.MeasureSparseDecode (rounds alternating one run of the
// decode and of each anchor, minimum kept):
//
//	x_memcpy  GB/s on the gathered records (656 B per valid index) ÷ copy()
//	          over the same bytes on GOMAXPROCS goroutines;
//	x_gemm    GFLOP/s (2·h_q·(576+512) per valid index) ÷ anchor.GEMM on an
//	          equal-FLOP problem.
func BenchmarkSparseDecode(b *testing.B) {
	c := oracle.SparseDecodeCase{B: 4, SQ: 1, HQ: 128, SK: 16384, TopK: 2048, Sink: true, Seed: 1}
	in, err := c.Build()
	if err != nil {
		b.Fatal(err)
	}
	be := sparseBackend(b, "cpu")
	for b.Loop() {
		if _, _, err := mla.SparseDecode(b.Context(), be, in.Q, in.Cache, in.Indices, in.TopK, &in.Opts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	m, err := oracle.MeasureSparseDecode(be, c, 1, 5)
	if err != nil {
		b.Fatal(err)
	}
	report(b, m)
}

// BenchmarkSparsePrefill runs sparse prefill at h_q=128, topk=2048,
// d_qk=576 over s_kv=8192, sized down from the s_q=4096 to s_q=256
// (the work is linear in s_q; 4096 takes half a minute per run on two
// cores), and reports the same ratios as BenchmarkSparseDecode (bytes: the
// gathered float32 KV rows).
func BenchmarkSparsePrefill(b *testing.B) {
	c := oracle.SparsePrefillCase{SQ: 256, HQ: 128, SKV: 8192, TopK: 2048, Seed: 1}
	in, err := c.Build()
	if err != nil {
		b.Fatal(err)
	}
	be := sparseBackend(b, "cpu")
	for b.Loop() {
		if _, _, _, err := mla.SparsePrefill(b.Context(), be, in.In, &in.Opts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	m, err := oracle.MeasureSparsePrefill(be, c, 1, 3)
	if err != nil {
		b.Fatal(err)
	}
	report(b, m)
}

func report(b *testing.B, m oracle.Measurement) {
	b.ReportMetric(m.GFLOPs, "GFLOP/s")
	b.ReportMetric(m.GBs, "GB/s")
	b.ReportMetric(m.RatioGEMM, "x_gemm")
	b.ReportMetric(m.RatioMemcpy, "x_memcpy")
	b.ReportMetric(m.GEMMGFLOPs, "gemm_GFLOP/s")
	b.ReportMetric(m.MemcpyGBs, "memcpy_GB/s")
}
