package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/mla"
)

// indexerBench compares, in interleaved rounds, one DeepSeek-V3.2 indexer
// decode step on the cpu backend (gemm.PagedMQALogits: b requests of ctx
// keys, next_n = 1, H heads of d over a paged FP8 cache of 64-token
// blocks) with OpenBLAS SGEMM on the equal-FLOP dequantized problem
// (A [H, d] · B [b·ctx, d]ᵀ), and the top-k selection of the step
// (mla.TopKRow, k of each ctx-logit row, one row after the other on
// one goroutine) with slices.Sort of the same rows. It prints one markdown table.
func indexerBench(be *cpu.Backend, ob *openblas, clk clock, rounds, b, h, d, ctx, topk int) {
	in := oracle.NewPagedMQALogitsDecode(1, b, h, d, 64, ctx)
	logits := make([]float32, in.B*in.MaxContextLen)
	c := context.Background()
	flops := oracle.PagedMQALogitsFLOPs(in)
	shape := oracle.Shape{M: h, N: b * ctx, K: d}
	var tIdx, tOB []float64
	for range rounds + 1 { // the first round warms up
		t := clk.now()
		if err := gemm.PagedMQALogits(c, be, in, logits, true); err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench:", err)
			os.Exit(1)
		}
		tIdx = append(tIdx, clk.now()-t)
		if ob != nil {
			s, err := ob.time(shape)
			if err != nil {
				fmt.Fprintln(os.Stderr, "gemm-bench: OpenBLAS:", err)
				os.Exit(1)
			}
			tOB = append(tOB, s)
		}
	}
	idx := make([]int32, b*topk)
	sorted := make([]float32, len(logits))
	var tTop, tSort []float64
	for range rounds + 1 {
		t := clk.now()
		for r := 0; r < b; r++ {
			mla.TopKRow(idx[r*topk:(r+1)*topk], logits[r*ctx:(r+1)*ctx])
		}
		tTop = append(tTop, clk.now()-t)
		copy(sorted, logits)
		t = clk.now()
		for r := 0; r < b; r++ {
			sortRow(sorted[r*ctx : (r+1)*ctx])
		}
		tSort = append(tSort, clk.now()-t)
	}
	gf := flops / best(tIdx[1:]) / 1e9
	fmt.Printf("indexer decode step: b=%d, next_n=1, H=%d, d=%d, %d keys per request (block 64), top-%d; kernel %s\n\n", b, h, d, ctx, topk, be.Kernel())
	fmt.Println("| part | cpu | anchor | ratio |")
	fmt.Println("|---|---|---|---|")
	if ob != nil {
		ogf := flops / best(tOB[1:]) / 1e9
		fmt.Printf("| logits (PagedMQALogits) vs OpenBLAS SGEMM [%d,%d]·[%d,%d]ᵀ | %.1f GFLOP/s | %.1f GFLOP/s | %.2f× |\n", h, d, b*ctx, d, gf, ogf, gf/ogf)
	} else {
		fmt.Printf("| logits (PagedMQALogits) | %.1f GFLOP/s | (no OpenBLAS) | |\n", gf)
	}
	ts, tq := best(tTop[1:]), best(tSort[1:])
	fmt.Printf("| top-%d of %d rows, one at a time (TopKRow) vs slices.Sort of the rows | %.3f ms | %.3f ms | %.1f× |\n", topk, b, ts*1e3, tq*1e3, tq/ts)
}

// sortRow is the sort anchor: slices.Sort of one logits row.
func sortRow(row []float32) { slices.Sort(row) }
