// Command pipeline-compare simulates 1F1B, ZB1P, DualPipe and DualPipeV at
// pipeline depth 16 with 64 micro-batches, using op costs taken from
// DeepSeek's published training profile (deepseek-ai/profile-data,
// train.json: one 4-layer chunk per op, EP64), prints a Markdown table and
// writes one SVG per schedule.
//
//	go run ./examples/pipeline-compare -svg docs
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/pipeline/svg"
)

// Per 4-layer chunk, in ms: compute F 35, b 56, W 24; all-to-all 61 forward
// and 53 backward. An op that is not overlapped pays compute plus
// communication; an overlapped F&B pair hides the communication (129 ms).
var profile = pipeline.OpCosts{F: 35 + 61, B: 56 + 53 + 24, W: 24, FB: 129}

func main() {
	dir := flag.String("svg", "", "write pipeline-<method>.svg files into this directory")
	flag.Parse()
	if err := run(os.Stdout, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline-compare:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, dir string) error {
	const pp, chunks = 16, 64
	rows := []struct {
		method pipeline.Method
		ranks  int
		params string
	}{
		{pipeline.Method1F1B, pp, "1 stage (1/16 of the model)"},
		{pipeline.MethodZB1P, pp, "1 stage (1/16)"},
		{pipeline.MethodDualPipe, pp, "2 stages (2/16: stage r and a copy of stage 15−r)"},
		{pipeline.MethodDualPipeV, pp / 2, "2 stages (2/16: stage r and stage 15−r)"},
	}
	fmt.Fprintf(w, "Costs per op (ms): F=%d B=%d (b=%d) W=%d F&B=%d; PP=%d stages, %d micro-batches.\n\n",
		profile.F, profile.B, profile.B-profile.W, profile.W, profile.FB, pp, chunks)
	fmt.Fprintln(w, "| method | devices | makespan (ms) | bubble ratio | idle per rank (ms) | peak activations per rank | parameters per rank | device·s per step | makespan in upstream's posting order (ms) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, r := range rows {
		s, err := pipeline.Generate(r.method, r.ranks, chunks)
		if err != nil {
			return err
		}
		p, err := pipeline.LowerReference(s)
		if err != nil {
			return err
		}
		if err := p.Check(); err != nil {
			return err
		}
		rep, err := pipeline.Simulate(s, pipeline.SimOptions{Costs: profile})
		if err != nil {
			return err
		}
		batched, err := pipeline.SimulateProgram(p, pipeline.SimOptions{Costs: profile})
		if err != nil {
			return err
		}
		lo, hi := rep.Idle[0], rep.Idle[0]
		for _, v := range rep.Idle {
			lo, hi = min(lo, v), max(hi, v)
		}
		plo, phi := rep.PeakActivations[0], rep.PeakActivations[0]
		for _, v := range rep.PeakActivations {
			plo, phi = min(plo, v), max(phi, v)
		}
		idle := fmt.Sprint(lo)
		if lo != hi {
			idle = fmt.Sprintf("%d–%d", lo, hi)
		}
		peak := fmt.Sprint(plo)
		if plo != phi {
			peak = fmt.Sprintf("%d–%d", plo, phi)
		}
		// Upstream's posting order exists for DualPipe and DualPipeV only.
		posted := "—"
		if s.Method == pipeline.MethodDualPipe || s.Method == pipeline.MethodDualPipeV {
			posted = fmt.Sprint(batched.Makespan)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.1f%% | %s | %s | %s | %.1f | %s |\n", s.Method, s.Ranks, rep.Makespan,
			100*rep.BubbleRatio, idle, peak, r.params, float64(rep.Makespan)*float64(s.Ranks)/1000, posted)
		if dir != "" {
			f, err := os.Create(filepath.Join(dir, "pipeline-"+string(s.Method)+".svg"))
			if err != nil {
				return err
			}
			title := fmt.Sprintf("%s, PP=16, %d micro-batches, profile costs (ms): makespan %d, bubble %.1f%%", s.Method, chunks, rep.Makespan, 100*rep.BubbleRatio)
			err = svg.Write(f, s, svg.Options{Report: rep, Title: title})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
