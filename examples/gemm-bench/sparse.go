package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/mla"
	mlaoracle "github.com/fireflyer-go/fireflyer/mla/oracle"
)

// sparsePrefillBench compares, in interleaved rounds, DeepSeek-V3.2's
// sparse prefill (mla.SparsePrefill on mla's cpu sparse backend: s_q query
// tokens of h_q heads, each attending to its topk of s_kv keys, d_qk = 576,
// d_v = 512) with OpenBLAS SGEMM on equal FLOPs: 2·s_q·h_q·keys·(d_qk+d_v),
// which is the GEMM [s_q·h_q, d_qk+d_v]·[topk, d_qk+d_v]ᵀ. That GEMM's A is
// gigabytes at s_q = 4096, so the anchor runs it as chunks of 64 query
// tokens (M = 64·h_q), one after the other, timed together: the same FLOPs
// at a size where OpenBLAS is at full rate. It prints one markdown table.
func sparsePrefillBench(kset string, ob *openblas, clk clock, rounds, sq, hq, skv, topk int) {
	be, err := mla.NewSparseBackend("cpu", mla.BackendOptions{Kernels: kset})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gemm-bench: -kernels:", err)
		os.Exit(2)
	}
	c := mlaoracle.SparsePrefillCase{SQ: sq, HQ: hq, SKV: skv, TopK: topk, Seed: 1}
	in, err := c.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gemm-bench:", err)
		os.Exit(2)
	}
	keys := min(topk, skv) // Build fills each row with unique valid rows first
	dqk, dv := in.In.DQK, min(mla.HeadDimV, in.In.DQK)
	flops := 2 * float64(sq) * float64(hq) * float64(keys) * float64(dqk+dv)
	const chunk = 64
	chunks := (sq + chunk - 1) / chunk
	shape := oracle.Shape{M: chunk * hq, N: keys, K: dqk + dv}
	ctx := context.Background()
	var tSp, tOB []float64
	for range rounds + 1 { // the first round warms up
		t := clk.now()
		if _, _, _, err := mla.SparsePrefill(ctx, be, in.In, &in.Opts); err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench:", err)
			os.Exit(1)
		}
		tSp = append(tSp, clk.now()-t)
		if ob != nil {
			var s float64
			for range chunks {
				x, err := ob.time(shape)
				if err != nil {
					fmt.Fprintln(os.Stderr, "gemm-bench: OpenBLAS:", err)
					os.Exit(1)
				}
				s += x
			}
			// The last chunk may be partial: scale to the exact FLOPs.
			tOB = append(tOB, s*float64(sq)/float64(chunks*chunk))
		}
	}
	gf := flops / best(tSp[1:]) / 1e9
	kname := "go"
	if k, ok := be.(interface{ Kernels() string }); ok {
		kname = k.Kernels()
	}
	fmt.Printf("sparse prefill: s_q=%d, h_q=%d, s_kv=%d, topk=%d (%d valid keys per row), d_qk=%d, d_v=%d; kernels %s\n\n", sq, hq, skv, topk, keys, dqk, dv, kname)
	fmt.Println("| call | GFLOP/s | anchor GFLOP/s | ratio |")
	fmt.Println("|---|---:|---:|---:|")
	if ob == nil {
		fmt.Printf("| flash_mla_sparse_fwd (SparsePrefill) | %.1f | (no OpenBLAS) | |\n", gf)
		return
	}
	ogf := flops / best(tOB[1:]) / 1e9
	fmt.Printf("| flash_mla_sparse_fwd (SparsePrefill) vs OpenBLAS SGEMM [%d,%d]·[%d,%d]ᵀ ×%d | %.1f | %.1f | %.2f× |\n", shape.M, shape.K, shape.N, shape.K, chunks, gf, ogf, gf/ogf)
}
