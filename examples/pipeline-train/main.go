// Command pipeline-train trains a small float32 MLP with a pipeline
// schedule across real processes: one process per rank, started with
// sock.Launch, the activations and gradients carried by pipeline/p2p over
// TCP or Unix sockets, each rank running pipeline.Executor.Step. It also
// trains the same model on the same data in one process, one micro-batch
// after the other, and checks that every loss of every step is
// bit-identical and that the last step's weight gradients agree within
// calc_diff 1e-12.
//
//	go run ./examples/pipeline-train -method dualpipev -ranks 4 -steps 3
//	go run ./examples/pipeline-train -method dualpipe -ranks 8 -steps 3
//
// Each stage is upstream's example stage, Linear(h, f) → GELU → Linear(f, h)
// without biases; the optimizer is plain SGD. DualPipe holds two copies of
// every stage (one per direction) on mirror ranks; after each step the two
// swap their gradients and both apply the sum (pipe 0's first).
//
// With -svg FILE it records the stage calls of the last step on every rank
// and draws, per rank, the measured timeline above the one the simulator
// predicts from the measured F, B and W costs, and prints both step times.
//
// Exit status: 0 when the check passed, 1 when it failed or a rank failed,
// 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/pipeline"
)

func main() {
	if sock.Launched() {
		if err := rankMain(); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline-train:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("pipeline-train", flag.ContinueOnError)
	fl.SetOutput(stderr)
	c := config{DieRank: -1}
	method := fl.String("method", "dualpipev", "schedule: dualpipev, dualpipe, 1f1b or zb1p")
	fl.IntVar(&c.Ranks, "ranks", 4, "number of rank processes")
	fl.IntVar(&c.Chunks, "chunks", 0, "micro-batches per step (0: twice the number of ranks)")
	fl.IntVar(&c.Steps, "steps", 3, "training steps")
	fl.IntVar(&c.Hidden, "hidden", 16, "hidden size h")
	fl.IntVar(&c.FFN, "ffn", 64, "inner size f of each stage's MLP")
	fl.IntVar(&c.Rows, "rows", 4, "rows per micro-batch")
	lr := fl.Float64("lr", 0.05, "SGD learning rate")
	fl.Uint64Var(&c.Seed, "seed", 233, "seed of the weights and the data")
	fl.StringVar(&c.Network, "network", "unix", "transport: unix or tcp (ep/sock), or ucx (ep/ucx over a TCP bootstrap; UCX_TLS passes through)")
	fl.DurationVar(&c.Timeout, "timeout", 2*time.Minute, "deadline of the whole run (and of every receive)")
	svgPath := fl.String("svg", "", "write the measured and the predicted timelines of the last step to this SVG file")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() != 0 {
		fmt.Fprintf(stderr, "pipeline-train: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	c.Method, c.LR, c.Trace = pipeline.Method(*method), float32(*lr), *svgPath != ""
	if err := c.fill(); err != nil {
		fmt.Fprintln(stderr, "pipeline-train:", err)
		return 2
	}
	rep, err := train(context.Background(), &c, nil)
	if err != nil {
		fmt.Fprintln(stderr, "pipeline-train:", err)
		return 1
	}
	printReport(stdout, &c, rep)
	if *svgPath != "" {
		tl, err := timelines(rep)
		if err != nil {
			fmt.Fprintln(stderr, "pipeline-train:", err)
			return 1
		}
		if err := tl.writeSVG(*svgPath); err != nil {
			fmt.Fprintln(stderr, "pipeline-train:", err)
			return 1
		}
		fmt.Fprintf(stdout, "last step: measured %.2f ms, simulated from measured costs %.2f ms (ratio %.3f); F=%.3f B=%.3f W=%.3f ms\n",
			ms(tl.measured.Makespan), ms(tl.predicted.Makespan), float64(tl.predicted.Makespan)/float64(tl.measured.Makespan),
			ms(tl.costs.F), ms(tl.costs.B), ms(tl.costs.W))
	}
	if !rep.BitIdentical || !(rep.GradCalcDiff <= 1e-12) {
		return 1
	}
	return 0
}

func ms(us int64) float64 { return float64(us) / 1e3 }

// fill checks c and sets the defaults that depend on the method.
func (c *config) fill() error {
	switch c.Method {
	case pipeline.MethodDualPipe, pipeline.MethodDualPipeV, pipeline.Method1F1B, pipeline.MethodZB1P:
	default:
		return fmt.Errorf("-method %q: want dualpipev, dualpipe, 1f1b or zb1p", c.Method)
	}
	if c.Ranks < 1 || c.Ranks > 64 {
		return fmt.Errorf("-ranks %d: want 1…64", c.Ranks)
	}
	if c.Chunks == 0 {
		c.Chunks = 2 * c.Ranks // the fewest DualPipe and DualPipeV accept
	}
	switch {
	case c.Steps < 1:
		return fmt.Errorf("-steps %d: want ≥ 1", c.Steps)
	case c.Hidden < 1 || c.FFN < 1 || c.Rows < 1 || c.Hidden > 1<<14 || c.FFN > 1<<16 || c.Rows > 1<<16:
		return fmt.Errorf("-hidden %d -ffn %d -rows %d: want 1…16384, 1…65536, 1…65536", c.Hidden, c.FFN, c.Rows)
	case c.Network != "tcp" && c.Network != "unix" && c.Network != "ucx":
		return fmt.Errorf("-network %q: want tcp, unix or ucx", c.Network)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout %v: want > 0", c.Timeout)
	}
	_, _, err := c.schedule()
	if err != nil {
		return fmt.Errorf("-method %s -ranks %d -chunks %d: %w", c.Method, c.Ranks, c.Chunks, err)
	}
	return nil
}

func printReport(w io.Writer, c *config, rep *report) {
	fmt.Fprintf(w, "%s over %d processes (%s sockets), %d stages, %d micro-batches of %d rows per step, %d steps, %.2fs\n",
		c.Method, c.Ranks, c.Network, rep.Sched.Stages, rep.Sched.Pipes*rep.Sched.Micro, c.Rows, c.Steps, rep.Wall.Seconds())
	for step := range c.Steps {
		var sum float64
		n := 0
		for _, l := range rep.Run {
			if l.Step == step {
				sum += l.Value
				n++
			}
		}
		fmt.Fprintf(w, "step %d: mean loss %.6f over %d micro-batches\n", step, sum/float64(max(n, 1)), n)
	}
	verdict := "bit-identical"
	if !rep.BitIdentical {
		verdict = "DIFFERENT"
	}
	fmt.Fprintf(w, "losses vs the sequential run: %s; weight gradients calc_diff %.3g (gate 1e-12)\n", verdict, rep.GradCalcDiff)
}
