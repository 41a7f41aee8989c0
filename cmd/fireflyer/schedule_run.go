package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/pipeline/p2p"
	pipesvg "github.com/fireflyer-go/fireflyer/pipeline/svg"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// scheduleRunConfig is what `schedule --run` sends every rank process
// (`fireflyer rank schedule CONFIG`).
type scheduleRunConfig struct {
	Method    pipeline.Method  `json:"method"`
	Ranks     int              `json:"ranks"`
	Chunks    int              `json:"chunks"`
	Reference bool             `json:"reference"` // LowerReference's program
	Costs     pipeline.OpCosts `json:"costs_us"`
	Timeout   time.Duration    `json:"timeout"`
}

func (c *scheduleRunConfig) program() (*pipeline.Schedule, *pipeline.Program, error) {
	s, err := pipeline.Generate(c.Method, c.Ranks, c.Chunks)
	if err != nil {
		return nil, nil, err
	}
	lower := pipeline.Lower
	if c.Reference {
		lower = pipeline.LowerReference
	}
	p, err := lower(s)
	if err == nil {
		err = p.Check()
	}
	return s, p, err
}

// sleepStage stands in for a device stage: each call sleeps for its cost,
// as an accelerator's kernels would take, leaving the CPU free.
type sleepStage struct{ f, b, w time.Duration }

// Forward sleeps for the F cost and passes its input on.
func (s sleepStage) Forward(ctx context.Context, _ int, in *tensor.Tensor) (*tensor.Tensor, error) {
	return in, sleepCtx(ctx, s.f)
}

// BackwardInput sleeps for the B cost and passes the gradient on.
func (s sleepStage) BackwardInput(ctx context.Context, _ int, g *tensor.Tensor) (*tensor.Tensor, error) {
	return g, sleepCtx(ctx, s.b)
}

// BackwardWeight sleeps for the W cost.
func (s sleepStage) BackwardWeight(ctx context.Context, _ int) error { return sleepCtx(ctx, s.w) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scheduleRun runs one step of c across c.Ranks processes over network and
// returns the measured timeline in µs.
func scheduleRun(ctx context.Context, c scheduleRunConfig, network string) (*pipeline.Report, error) {
	s, _, err := c.program()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	exits, err := sock.Launch(ctx, sock.LaunchConfig{Network: network, WorldSize: c.Ranks,
		Args: []string{"rank", "schedule", string(js)}, Timeout: c.Timeout})
	if err != nil {
		return nil, err
	}
	spans := make([][]pipeline.Span, c.Ranks)
	for _, e := range exits {
		var calls []pipeline.Call
		if err := json.Unmarshal(e.Stdout, &calls); err != nil {
			return nil, fmt.Errorf("rank %d output: %w", e.Rank, err)
		}
		if spans[e.Rank], err = pipeline.OpSpans(s.Ops[e.Rank], calls); err != nil {
			return nil, fmt.Errorf("rank %d: %w", e.Rank, err)
		}
	}
	return pipeline.Measured(s, spans, 1000)
}

// scheduleRankMain is one rank process of `schedule --run`: it joins the
// group, runs one step of sleeping stages over pipeline/p2p and prints its
// recorded stage calls as JSON.
func scheduleRankMain(args []string, stdout, stderr io.Writer) int {
	var c scheduleRunConfig
	if len(args) != 1 {
		fmt.Fprintln(stderr, "fireflyer rank schedule: want one argument, the configuration (JSON)")
		return exitUsage
	}
	if err := json.Unmarshal([]byte(args[0]), &c); err != nil {
		fmt.Fprintln(stderr, "fireflyer rank schedule:", err)
		return exitUsage
	}
	opts, ctx, cancel, err := sock.LaunchedOptions(context.Background())
	defer cancel()
	if err != nil {
		fmt.Fprintln(stderr, "fireflyer rank schedule:", err)
		return exitUsage
	}
	calls, err := scheduleRank(ctx, c, opts)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer schedule --run: rank %d: %v\n", opts.Rank, err)
		return exitFail
	}
	if err := json.NewEncoder(stdout).Encode(calls); err != nil {
		fmt.Fprintln(stderr, "fireflyer rank schedule:", err)
		return exitFail
	}
	return exitOK
}

func scheduleRank(ctx context.Context, c scheduleRunConfig, opts sock.Options) ([]pipeline.Call, error) {
	s, prog, err := c.program()
	if err != nil {
		return nil, err
	}
	tr, err := sock.Dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	net, err := p2p.New(ctx, tr, p2p.Options{Timeout: c.Timeout})
	if err != nil {
		tr.Close()
		return nil, err
	}
	defer net.Close()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	st := sleepStage{f: us(c.Costs.F), b: us(c.Costs.B - c.Costs.W), w: us(c.Costs.W)}
	trace := &pipeline.Trace{}
	stages := make([]pipeline.Stage[*tensor.Tensor], len(s.Place[tr.Rank()]))
	for i := range stages {
		stages[i] = pipeline.Wrap[*tensor.Tensor](trace, st)
	}
	payload, _ := tensor.FromSlice([]float32{1}, 1, 1)
	ex := &pipeline.Executor[*tensor.Tensor]{
		Program: prog,
		Input:   func(int, int) (*tensor.Tensor, error) { return payload, nil },
		Criterion: func(_, _ int, out *tensor.Tensor) (float64, *tensor.Tensor, error) {
			return 0, out, nil
		},
	}
	if err := net.Barrier(ctx); err != nil {
		return nil, err
	}
	if _, err := ex.Step(ctx, tr.Rank(), stages, net, pipeline.StepOptions{}); err != nil {
		return nil, err
	}
	// Close only when no peer waits for this rank any more.
	if err := net.Barrier(ctx); err != nil {
		return nil, err
	}
	return trace.Calls(), nil
}

// printScheduleRun prints (and with svgPath draws) the measured timeline
// next to the simulated one, both in µs, as milliseconds.
func printScheduleRun(stdout, stderr io.Writer, s *pipeline.Schedule, measured, simulated *pipeline.Report, svgPath string) int {
	if svgPath != "" {
		var buf bytes.Buffer
		title := fmt.Sprintf("%s ranks=%d chunks=%d: measured %s ms (run) vs simulated %s ms (sim)",
			s.Method, s.Ranks, s.Chunks, decimal(measured.Makespan, 1000), decimal(simulated.Makespan, 1000))
		if err := pipesvg.Write(&buf, s, pipesvg.Options{Report: measured, Compare: simulated, Title: title}); err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitFail
		}
		if svgPath == "-" {
			if _, err := stdout.Write(buf.Bytes()); err != nil {
				fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
				return exitFail
			}
			return exitOK
		}
		if err := os.WriteFile(svgPath, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: --svg: %v\n", err)
			return exitFail
		}
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for r := range measured.Busy {
		fmt.Fprintf(w, "r%d: measured busy %s idle %s simulated busy %s idle %s\n", r,
			decimal(measured.Busy[r], 1000), decimal(measured.Idle[r], 1000),
			decimal(simulated.Busy[r], 1000), decimal(simulated.Idle[r], 1000))
	}
	ratio := 0.0
	if measured.Makespan > 0 {
		ratio = float64(simulated.Makespan) / float64(measured.Makespan)
	}
	fmt.Fprintf(w, "makespan measured %s simulated %s simulated/measured %s\n",
		decimal(measured.Makespan, 1000), decimal(simulated.Makespan, 1000), strconv.FormatFloat(ratio, 'f', 4, 64))
	return exitOK
}
