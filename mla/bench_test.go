package mla_test

import (
	"fmt"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/anchor"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BenchmarkDecode runs the sizes (b=4, s_k=4096, BF16 cache, h_kv=1,
// 576/512, page 64, causal) through the cpu backend and reports, as
// FlashMLA's test counts them, GFLOP/s = 2·b·s_q·h_q·s_k·(576+512)/t and
// GB/s = (Σs_k·h_kv·576 + b·s_q·h_q·(576+512))·2 B/t, then the same-run
// ratios:
//
//	x_gemm   decode GFLOP/s ÷ GFLOP/s of this repo's fastest float32 GEMM
//	         (anchor.GEMM: the kernels' GemmPacked, the cpu backend's AVX-512
//	         micro-kernel with packing and cache blocking, over GOMAXPROCS
//	         goroutines) on an M=b·s_q·h_q, N=s_k, K=1088 GEMM of equal FLOPs;
//	x_gonum  the same against gonum's Sgemm;
//	x_memcpy decode GB/s ÷ the bandwidth of copy() over the same number of
//	         bytes, split over GOMAXPROCS goroutines.
//
// ns/op is the plain b.Loop mean; the rates and ratios come from the
// minimum time of the decode and of each anchor over 40 rounds (10 at
// h_q·s_q ≥ 128) that alternate one run of each (oracle.Measure): on a
// shared box the minimum is the run least disturbed by other processes, and
// alternating exposes all three to the same interference.
func BenchmarkDecode(b *testing.B) {
	for _, hq := range []int{1, 16, 128} {
		for _, sq := range []int{1, 2} {
			c := oracle.Case{B: 4, SQ: sq, SK: 4096, HQ: hq, HKV: 1, Causal: true, DType: tensor.BF16T, Seed: 99}
			b.Run(fmt.Sprintf("b4_sk4096_hq%d_sq%d_BF16", hq, sq), func(b *testing.B) {
				in, err := c.Build()
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, _, err := mla.Decode(b.Context(), mla.Default(), in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				rounds := 40
				if hq*sq >= 128 {
					rounds = 10
				}
				m, err := oracle.Measure(mla.Default(), c, 1, rounds)
				if err != nil {
					b.Fatal(err)
				}
				gonumT := anchor.BestOf(1, gonumAnchor(c.B*c.SQ*c.HQ, c.SK, mla.HeadDim+mla.HeadDimV))
				b.ReportMetric(m.GFLOPs, "GFLOP/s")
				b.ReportMetric(m.GBs, "GB/s")
				b.ReportMetric(m.RatioGEMM, "x_gemm")
				b.ReportMetric(gonumT/m.Seconds, "x_gonum")
				b.ReportMetric(m.RatioMemcpy, "x_memcpy")
				b.ReportMetric(m.GEMMGFLOPs, "gemm_GFLOP/s")
				b.ReportMetric(m.MemcpyGBs, "memcpy_GB/s")
			})
		}
	}
}

func gonumAnchor(m, n, k int) func() {
	r := testutil.RNG(6)
	a := testutil.Normal(r, m*k, 0, 1)
	bm := testutil.Normal(r, k*n, 0, 1)
	c := make([]float32, m*n)
	return func() {
		gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, bm, n, 0, c, n)
	}
}
