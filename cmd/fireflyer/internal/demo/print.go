package demo

import (
	"fmt"
	"io"
	"strings"

	"github.com/fireflyer-go/fireflyer/pipeline"
)

// Schedule returns the simulated DualPipe schedule (for WriteSVG).
func (r *Result) Schedule() *pipeline.Schedule { return r.schedule }

// Report returns the pipeline simulation report (for WriteSVG).
func (r *Result) Report() *pipeline.Report { return r.report }

// PrintTable writes the human-readable report; its last line is the check
// line `check: calc_diff=<v> threshold=0.002 ok|FAILED` (FAILED also when
// the attention or MoE part alone is over PartThreshold, said on the line
// before).
func PrintTable(w io.Writer, r *Result) {
	m := r.Model
	size := fmt.Sprintf("at scale 1/%d", m.Scale)
	if m.Scale == 0 && r.Read != nil {
		size = "read from " + r.Read.Dir
	}
	name := "DeepSeek-V3"
	if m.IndexTopK > 0 {
		name = "DeepSeek-V3.2"
	}
	fmt.Fprintf(w, "model: %s MoE layer %s: hidden %d, %d routed experts (top-%d, %d groups, top-%d groups), %d heads (576/512), moe_inter %d\n",
		name, size, m.Hidden, m.Experts, m.TopK, m.Groups, m.TopKGroup, m.Heads, m.MoEInter)
	if ic := r.Indexer; ic != nil {
		fmt.Fprintf(w, "       lightning indexer: %d heads × %d (FP8, UE8M0 scales), top-%d keys per token into sparse MLA over the FP8 cache\n",
			ic.Heads, ic.HeadDim, ic.TopK)
	}
	fmt.Fprintf(w, "step:  %d sequences, %d expert-parallel ranks over %s, gemm cpu kernel %s, softmax scale %.5f\n",
		r.Batch, r.Ranks, r.Transport, r.GemmKernel, m.SoftmaxScale)
	if c := r.Written; c != nil {
		fmt.Fprintf(w, "checkpoint written: %d tensors, %.1f MB in %s\n", c.Tensors, float64(c.Bytes)/1e6, strings.Join(c.Files, ", "))
	}
	if c := r.Read; c != nil {
		fmt.Fprintf(w, "checkpoint read:    %d tensors, %.1f MB, %d checksums verified\n", c.Tensors, float64(c.Bytes)/1e6, c.Verified)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-52s %10s %10s %9s %9s\n", "stage", "time ms", "MB", "GB/s", "GFLOP/s")
	for _, s := range r.Stages {
		mb, gbs, gf := "", "", ""
		if s.Bytes > 0 {
			mb, gbs = fmt.Sprintf("%.2f", float64(s.Bytes)/1e6), fmt.Sprintf("%.2f", s.GBps)
		}
		if s.FLOPs > 0 {
			gf = fmt.Sprintf("%.1f", s.GFLOPs)
		}
		fmt.Fprintf(w, "%-52s %10.2f %10s %9s %9s\n", s.Name, s.Seconds*1e3, mb, gbs, gf)
	}
	e := r.EPLB
	fmt.Fprintln(w)
	fmt.Fprintf(w, "eplb: %d experts on %d slots over %d ranks; warm-up loads: imbalance (max/mean) %.3f → %.3f, balancedness %.3f → %.3f\n",
		m.Experts, e.Replicas, r.Ranks, e.ImbalanceBefore, e.ImbalanceAfter, e.BalancednessBefore, e.BalancednessAfter)
	fmt.Fprintf(w, "      this batch's token-slots per rank: imbalance %.3f without replication → %.3f with the plan\n",
		e.ObservedImbalanceBefore, e.ObservedImbalanceAfter)
	p := r.Pipeline
	fmt.Fprintf(w, "pipeline: DualPipe %d stages × %d micro-batches, costs µs %s: makespan %d µs, bubble %.1f%%, peak activations %d\n",
		p.Stages, p.MicroBatch, p.Costs, p.Makespan, 100*p.BubbleRatio, p.PeakAct)
	fmt.Fprintf(w, "parts: attention calc_diff=%.2e, moe calc_diff=%.2e; router scores within %.1e of float64, float64 router agrees on %d/%d tokens\n",
		r.AttnDiff, r.MoEDiff, r.RouterScoreDiff, r.RouterAgreement, r.Batch)
	if ic := r.Indexer; ic != nil {
		fmt.Fprintf(w, "indexer: logits calc_diff=%.2e; top-%d equals float64's on %d/%d tokens (near ties may flip), %d keys outside the near-tie band; %d/%d tokens see more than %d keys (up to %d)\n",
			ic.CalcDiff, ic.TopK, ic.Agreement, r.Batch, ic.Outside, ic.Sparse, r.Batch, ic.TopK, ic.MaxContext)
	}
	verdict := "ok"
	if !r.OK {
		verdict = "FAILED"
		if r.RouterMismatch > 0 {
			fmt.Fprintf(w, "router: %d/%d tokens' experts differ from noaux_tc on the step's own scores\n", r.RouterMismatch, r.Batch)
		}
		if !(r.RouterScoreDiff < RouterScoreTolerance) {
			fmt.Fprintf(w, "router: scores differ from float64 by %.2e, over %g\n", r.RouterScoreDiff, RouterScoreTolerance)
		}
		if ic := r.Indexer; ic != nil {
			if !(ic.CalcDiff < ic.Threshold) {
				fmt.Fprintf(w, "indexer: logits calc_diff=%.2e is over its threshold %g\n", ic.CalcDiff, ic.Threshold)
			}
			if ic.Mismatch > 0 {
				fmt.Fprintf(w, "top-k: %d/%d tokens' keys differ from the top-%d of the step's own logits\n", ic.Mismatch, r.Batch, ic.TopK)
			}
			if ic.Outside > 0 {
				fmt.Fprintf(w, "top-k: %d keys chosen or left out against the float64 logits beyond the near-tie band\n", ic.Outside)
			}
		}
		for _, p := range []struct {
			name string
			v    float64
		}{{"attention", r.AttnDiff}, {"moe", r.MoEDiff}} {
			if !(p.v < r.PartThreshold) {
				fmt.Fprintf(w, "%s: calc_diff=%.2e is over its own threshold %g\n", p.name, p.v, r.PartThreshold)
			}
		}
	}
	fmt.Fprintf(w, "check: calc_diff=%.2e threshold=%g %s\n", r.CalcDiff, r.Threshold, verdict)
}
