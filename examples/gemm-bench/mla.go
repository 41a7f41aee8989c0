package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/internal/anchor"
	"github.com/fireflyer-go/fireflyer/mla"
	mlaoracle "github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// mlaBench times MLA decode (mla's cpu backend on the kernel set kset;
// b=4, s_q=1, s_k=4096, h_kv=1, BF16 cache, page 64, causal) at h_q=128
// and h_q=1, interleaved with OpenBLAS SGEMM on the GEMM of equal FLOPs
// (M=b·s_q·h_q, N=s_k, K=576+512) and a copy of the decode's bytes, on the
// same clock as the GEMM table (thread CPU time with -threads 1: decode
// and copy then run on the calling goroutine). FLOPs and bytes are counted
// as FlashMLA's test counts them (mla/oracle).
func mlaBench(kset string, rounds int, clk clock, oneThread bool, obs []*openblas, obNames []string) {
	be, err := mla.NewCPU(mla.CPUOptions{Kernels: kset})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gemm-bench: -mla:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	fmt.Println()
	hdr := "| h_q | decode GFLOP/s | decode GB/s | GEMM of equal FLOPs |"
	sep := "|---:|---:|---:|---|"
	for _, n := range obNames {
		hdr += fmt.Sprintf(" %s f32 GFLOP/s | decode/%s |", n, n)
		sep += "---:|---:|"
	}
	fmt.Println(hdr + " memcpy GB/s | decode/memcpy |")
	fmt.Println(sep + "---:|---:|")
	for _, hq := range []int{128, 1} {
		c := mlaoracle.Case{B: 4, SQ: 1, SK: 4096, HQ: hq, HKV: 1, Causal: true, DType: tensor.BF16T, Seed: 99}
		in, err := c.Build()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench: -mla:", err)
			os.Exit(1)
		}
		decode := func() {
			if _, _, err := mla.Decode(ctx, be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts); err != nil {
				fmt.Fprintln(os.Stderr, "gemm-bench: -mla:", err)
				os.Exit(1)
			}
		}
		flops, bytes := in.FLOPs(), in.Bytes()
		shape := oracle.Shape{M: c.B * c.SQ * hq, N: c.SK, K: mla.HeadDim + mla.HeadDimV}
		var memcpy func()
		if oneThread {
			src, dst := make([]byte, int(bytes)), make([]byte, int(bytes))
			for i := range src {
				src[i] = byte(i)
			}
			memcpy = func() { copy(dst, src) }
		} else {
			memcpy = anchor.Memcpy(int(bytes))
		}
		// Short calls are repeated within a round and the best kept.
		reps := 1
		if hq == 1 {
			reps = 10
		}
		timeOf := func(f func()) float64 {
			b := 0.0
			for i := 0; i < reps; i++ {
				t := clk.now()
				f()
				if d := clk.now() - t; i == 0 || d < b {
					b = d
				}
			}
			return b
		}
		decode()
		memcpy()
		var td, tm []float64
		tob := make([][]float64, len(obs))
		for r := 0; r < rounds; r++ {
			td = append(td, timeOf(decode))
			for i, o := range obs {
				ts, err := o.time(shape)
				if err != nil {
					fmt.Fprintln(os.Stderr, "gemm-bench: OpenBLAS:", err)
					os.Exit(1)
				}
				tob[i] = append(tob[i], ts)
			}
			tm = append(tm, timeOf(memcpy))
		}
		d := flops / best(td) / 1e9
		row := fmt.Sprintf("| %d | %.1f | %.2f | M=%d N=%d K=%d |", hq, d, bytes/best(td)/1e9, shape.M, shape.N, shape.K)
		for i := range obs {
			g := flops / best(tob[i]) / 1e9
			row += fmt.Sprintf(" %.1f | %.2f× |", g, d/g)
		}
		fmt.Printf("%s %.2f | %.2f× |\n", row, bytes/best(tm)/1e9, best(tm)/best(td))
	}
}
