package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/ep/ucx"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/pipeline/p2p"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// envConfig carries the run's configuration (JSON) to the rank processes.
const envConfig = "PIPELINE_TRAIN_CONFIG"

// config is one training run.
type config struct {
	Method  pipeline.Method
	Ranks   int // processes
	Chunks  int // micro-batches per step (generator's chunks)
	Steps   int
	Hidden  int // h
	FFN     int // f
	Rows    int // rows per micro-batch
	LR      float32
	Seed    uint64
	Network string        // tcp or unix (ep/sock), or ucx (ep/ucx, bootstrapped over tcp)
	Timeout time.Duration // of the whole launch; every receive is bounded by it
	Trace   bool          // record the stage calls of the last step
	// DieRank, when ≥ 0, makes that rank exit with status 3 in the forward
	// of micro-batch 1 of the first step: the others must fail within the
	// deadline.
	DieRank int
}

func (c *config) schedule() (*pipeline.Schedule, *pipeline.Program, error) {
	s, err := pipeline.Generate(c.Method, c.Ranks, c.Chunks)
	if err != nil {
		return nil, nil, err
	}
	p, err := pipeline.LowerReference(s)
	if err != nil {
		return nil, nil, err
	}
	return s, p, p.Check()
}

// lossRec is one micro-batch's loss of one step.
type lossRec struct {
	Step, Pipe, Micro int
	Value             float64
}

// rankResult is what a rank process prints (JSON) on standard output.
type rankResult struct {
	Rank   int
	Losses []lossRec
	// Grads holds, per model stage this rank is the pipe-0 holder of, the
	// summed weight gradients [W1 grad, W2 grad] of the last step.
	Grads map[int][]float32
	// Calls are the last step's stage calls when tracing.
	Calls []pipeline.Call
}

// microBatches splits step's batch into per-pipe micro-batches, inputs and
// labels, as upstream's step does: DualPipe's first rank gets the first half
// of the batch and its last rank the second half (ScatterBatch along
// dimension 0), and each half is scattered into Micro micro-batches.
func microBatches(c *config, s *pipeline.Schedule, step int) (in, lab [][]*tensor.Tensor, err error) {
	x, y := batch(c.Seed, step, s.Pipes*s.Micro*c.Rows, c.Hidden)
	xs, err := pipeline.ScatterBatch(x, s.Pipes, 0)
	if err != nil {
		return nil, nil, err
	}
	ys, err := pipeline.ScatterBatch(y, s.Pipes, 0)
	if err != nil {
		return nil, nil, err
	}
	for p := range s.Pipes {
		a, err := pipeline.ScatterBatch(xs[p], s.Micro, 0)
		if err != nil {
			return nil, nil, err
		}
		b, err := pipeline.ScatterBatch(ys[p], s.Micro, 0)
		if err != nil {
			return nil, nil, err
		}
		in, lab = append(in, a), append(lab, b)
	}
	return in, lab, nil
}

// sumGrads returns pipe 0's gradient plus pipe 1's (when there are two
// copies), the one reduction order both the pipeline and the sequential
// reference use.
func sumGrads(copies []*mlp) (g1, g2 []float32) {
	g1, g2 = slices.Clone(copies[0].g1), slices.Clone(copies[0].g2)
	for _, c := range copies[1:] {
		for i := range g1 {
			g1[i] += c.g1[i]
		}
		for i := range g2 {
			g2[i] += c.g2[i]
		}
	}
	return g1, g2
}

// sequential trains the same model on the same data in one process: every
// micro-batch forward through all stages, its loss, and straight back, in
// micro-batch order, each pipe's micro-batches on its own copy of the
// stages (so that weight gradients accumulate in the pipeline's order).
func sequential(ctx context.Context, c *config) ([]lossRec, map[int][]float32, error) {
	s, _, err := c.schedule()
	if err != nil {
		return nil, nil, err
	}
	copies := make([][]*mlp, s.Stages) // [stage][pipe]
	for st := range copies {
		for range s.Pipes {
			copies[st] = append(copies[st], newMLP(c.Hidden, c.FFN, c.Seed, st))
		}
	}
	var losses []lossRec
	grads := map[int][]float32{}
	for step := range c.Steps {
		in, lab, err := microBatches(c, s, step)
		if err != nil {
			return nil, nil, err
		}
		for p := range s.Pipes {
			for m := range s.Micro {
				x := in[p][m]
				for st := range s.Stages {
					if x, err = copies[st][p].Forward(ctx, m, x); err != nil {
						return nil, nil, err
					}
				}
				l, g, err := mse(x, lab[p][m])
				if err != nil {
					return nil, nil, err
				}
				losses = append(losses, lossRec{step, p, m, l})
				for st := s.Stages - 1; st >= 0; st-- {
					if g, err = copies[st][p].BackwardInput(ctx, m, g); err != nil {
						return nil, nil, err
					}
					if err := copies[st][p].BackwardWeight(ctx, m); err != nil {
						return nil, nil, err
					}
				}
			}
		}
		for st := range copies {
			g1, g2 := sumGrads(copies[st])
			if step == c.Steps-1 {
				grads[st] = append(slices.Clone(g1), g2...)
			}
			for _, m := range copies[st] {
				m.sgd(c.LR, g1, g2)
			}
		}
	}
	return losses, grads, nil
}

// gradTag is the tag under which mirror ranks swap DualPipe's stage-copy
// gradients after step (Micro beyond any micro-batch of a step).
func gradTag(phase, step int) pipeline.Tag {
	return pipeline.Tag{Phase: phase, Kind: pipeline.Gradient, Micro: 1<<30 + step}
}

// dieStage makes the process exit in the forward of one micro-batch.
type dieStage struct {
	*mlp
	micro int
}

// Forward exits the process at the chosen micro-batch, else delegates.
func (d dieStage) Forward(ctx context.Context, micro int, in *tensor.Tensor) (*tensor.Tensor, error) {
	if micro == d.micro {
		fmt.Fprintln(os.Stderr, "pipeline-train: dying on purpose")
		os.Exit(3)
	}
	return d.mlp.Forward(ctx, micro, in)
}

// runRank is one rank process: it trains its stages for c.Steps steps over
// the p2p transport and returns its losses and gradients.
func runRank(ctx context.Context, c *config, rank int, net *p2p.Transport) (*rankResult, error) {
	s, prog, err := c.schedule()
	if err != nil {
		return nil, err
	}
	trace := &pipeline.Trace{}
	mine := make([]*mlp, len(s.Place[rank]))
	stages := make([]pipeline.Stage[*tensor.Tensor], len(mine))
	for ph, ref := range s.Place[rank] {
		mine[ph] = newMLP(c.Hidden, c.FFN, c.Seed, ref.Stage)
		stages[ph] = mine[ph]
		if c.DieRank == rank && ph == 0 {
			stages[ph] = dieStage{mine[ph], 1}
		}
		if c.Trace {
			stages[ph] = pipeline.Wrap(trace, stages[ph])
		}
	}
	res := &rankResult{Rank: rank, Grads: map[int][]float32{}}
	for step := range c.Steps {
		in, lab, err := microBatches(c, s, step)
		if err != nil {
			return nil, err
		}
		ex := &pipeline.Executor[*tensor.Tensor]{
			Program: prog,
			Input:   func(pipe, micro int) (*tensor.Tensor, error) { return in[pipe][micro], nil },
			Criterion: func(pipe, micro int, out *tensor.Tensor) (float64, *tensor.Tensor, error) {
				return mse(out, lab[pipe][micro])
			},
		}
		if err := net.Barrier(ctx); err != nil {
			return nil, err
		}
		trace.Reset()
		out, err := ex.Step(ctx, rank, stages, net, pipeline.StepOptions{})
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step, err)
		}
		for _, l := range out.Losses {
			res.Losses = append(res.Losses, lossRec{step, l.Pipe, l.Micro, l.Value})
		}
		// DualPipe holds two copies of every stage on mirror ranks: swap
		// their gradients (every send first, then the receives) and sum
		// them in pipe order on both sides.
		if s.Pipes == 2 {
			for ph, ref := range s.Place[rank] {
				q, qph, ok := s.Locate(pipeline.StageRef{Pipe: 1 - ref.Pipe, Stage: ref.Stage})
				if !ok || q == rank {
					return nil, fmt.Errorf("stage %d has no copy in pipe %d on another rank", ref.Stage, 1-ref.Pipe)
				}
				g := append(slices.Clone(mine[ph].g1), mine[ph].g2...)
				if err := net.Send(ctx, q, gradTag(qph, step), f32Tensor(g, 1, len(g))); err != nil {
					return nil, err
				}
			}
		}
		for ph, ref := range s.Place[rank] {
			copies := []*mlp{mine[ph]}
			if s.Pipes == 2 {
				q, _, _ := s.Locate(pipeline.StageRef{Pipe: 1 - ref.Pipe, Stage: ref.Stage})
				t, err := net.Recv(ctx, q, gradTag(ph, step))
				if err != nil {
					return nil, err
				}
				o := t.F32()
				if n := len(mine[ph].g1) + len(mine[ph].g2); len(o) != n {
					return nil, fmt.Errorf("stage %d: peer gradient of %d values, want %d", ref.Stage, len(o), n)
				}
				other := &mlp{g1: o[:len(mine[ph].g1)], g2: o[len(mine[ph].g1):]}
				if ref.Pipe == 0 {
					copies = append(copies, other)
				} else {
					copies = []*mlp{other, mine[ph]}
				}
			}
			g1, g2 := sumGrads(copies)
			if step == c.Steps-1 && ref.Pipe == 0 {
				res.Grads[ref.Stage] = append(slices.Clone(g1), g2...)
			}
			mine[ph].sgd(c.LR, g1, g2)
		}
	}
	if c.Trace {
		res.Calls = trace.Calls()
	}
	// Do not close while a peer still waits for this rank's gradients.
	if err := net.Barrier(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// rankMain is the body of a rank process started by sock.Launch: it reads
// the configuration from the environment, joins the group and prints its
// rankResult as JSON.
func rankMain() error {
	var c config
	if err := json.Unmarshal([]byte(os.Getenv(envConfig)), &c); err != nil {
		return fmt.Errorf("%s: %w", envConfig, err)
	}
	opts, ctx, cancel, err := sock.LaunchedOptions(context.Background())
	defer cancel()
	if err != nil {
		return err
	}
	var tr ep.Transport
	if c.Network == "ucx" {
		tr, err = ucx.Dial(ctx, ucx.Options{Boot: opts})
	} else {
		tr, err = sock.Dial(ctx, opts)
	}
	if err != nil {
		return err
	}
	net, err := p2p.New(ctx, tr, p2p.Options{Timeout: c.Timeout})
	if err != nil {
		tr.Close()
		return err
	}
	defer net.Close()
	res, err := runRank(ctx, &c, tr.Rank(), net)
	if err != nil {
		return fmt.Errorf("rank %d: %w", tr.Rank(), err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// report is the outcome of a run.
type report struct {
	Seq, Run     []lossRec
	BitIdentical bool
	GradCalcDiff float64 // worst stage
	Results      []*rankResult
	Wall         time.Duration
	Sched        *pipeline.Schedule
	Exits        []sock.RankExit // of a failed launch
}

// calcDiff is 1 − 2Σxy / Σ(x²+y²) in float64 (DeepGEMM's calc_diff).
func calcDiff(x, y []float32) float64 {
	var xy, den float64
	for i := range x {
		a, b := float64(x[i]), float64(y[i])
		xy += a * b
		den += a*a + b*b
	}
	if den == 0 {
		return 0
	}
	return 1 - 2*xy/den
}

// train runs c over c.Ranks processes and the sequential reference, and
// compares them. command builds a rank's process (nil: this executable
// again, which enters rankMain because sock.Launch sets its environment).
func train(ctx context.Context, c *config, command func(rank int) *exec.Cmd) (*report, error) {
	s, _, err := c.schedule()
	if err != nil {
		return nil, err
	}
	seq, seqGrads, err := sequential(ctx, c)
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	boot := c.Network
	if boot == "ucx" {
		boot = "tcp" // ep/ucx exchanges its addresses over a TCP bootstrap
	}
	lc := sock.LaunchConfig{
		Network: boot, WorldSize: c.Ranks, Timeout: c.Timeout,
		Env: []string{envConfig + "=" + string(cfg)},
	}
	if c.DieRank >= 0 {
		// the survivors are to notice the death themselves
		lc.Grace = c.Timeout
	}
	lc.Command = command
	start := time.Now()
	exits, err := sock.Launch(ctx, lc)
	wall := time.Since(start)
	if err != nil {
		return &report{Wall: wall, Exits: exits}, err
	}
	rep := &report{Seq: seq, Wall: wall, Sched: s}
	for _, e := range exits {
		var r rankResult
		if err := json.Unmarshal(e.Stdout, &r); err != nil {
			return nil, fmt.Errorf("rank %d output: %w", e.Rank, err)
		}
		rep.Results = append(rep.Results, &r)
		rep.Run = append(rep.Run, r.Losses...)
	}
	slices.SortFunc(rep.Run, func(a, b lossRec) int {
		if a.Step != b.Step {
			return a.Step - b.Step
		}
		if a.Pipe != b.Pipe {
			return a.Pipe - b.Pipe
		}
		return a.Micro - b.Micro
	})
	rep.BitIdentical = len(rep.Run) == len(seq)
	for i := range min(len(rep.Run), len(seq)) {
		a, b := rep.Run[i], seq[i]
		if a.Step != b.Step || a.Pipe != b.Pipe || a.Micro != b.Micro || math.Float64bits(a.Value) != math.Float64bits(b.Value) {
			rep.BitIdentical = false
		}
	}
	got := map[int][]float32{}
	for _, r := range rep.Results {
		for st, g := range r.Grads {
			got[st] = g
		}
	}
	for st, want := range seqGrads {
		g, ok := got[st]
		if !ok || len(g) != len(want) {
			return rep, fmt.Errorf("no gradient of stage %d from the ranks", st)
		}
		rep.GradCalcDiff = max(rep.GradCalcDiff, calcDiff(g, want))
	}
	return rep, nil
}
