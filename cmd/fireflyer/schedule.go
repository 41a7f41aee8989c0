package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fireflyer-go/fireflyer/pipeline"
	pipesvg "github.com/fireflyer-go/fireflyer/pipeline/svg"
)

func init() {
	register(command{name: "schedule", summary: "print, simulate and draw pipeline schedules (1F1B, ZB1P, DualPipe, DualPipeV)", run: runSchedule})
}

const scheduleSynopsis = "schedule --method 1f1b|zb1p|dualpipe|dualpipev --ranks N --chunks C [--text|--json] [--svg out.svg] [--simulate --cost F=1,B=2,W=1,FB=3] [--run [--transport unix|tcp]]"

func runSchedule(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("schedule", scheduleSynopsis, stderr)
	method := fs.String("method", "dualpipe", "schedule: 1f1b, zb1p, dualpipe or dualpipev")
	ranks := fs.Int("ranks", 4, "number of ranks (devices)")
	chunks := fs.Int("chunks", 0, "number of micro-batches per step (0: 2·ranks)")
	text := fs.Bool("text", false, "print one line per rank: r<rank>: <op> <op> ... (the default output)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	svg := fs.String("svg", "", "also write an SVG picture to this file ('-': to standard output instead of the text or JSON)")
	simulate := fs.Bool("simulate", false, "simulate with --cost: per rank busy, idle and peak activations, then the makespan")
	costs := fs.String("cost", "F=1,B=2,W=1,FB=3", "op costs for --simulate: F forward, B full backward, W weight part of B (b = B−W), FB overlapped pair; missing keys: F=1 B=2 W=1 FB=F+B")
	p2p := fs.String("p2p", "0", "point-to-point latency for --simulate, in the cost unit")
	lower := fs.String("lower", "", "print the lowered program with its sends and receives instead of the ops: dataflow or reference (upstream's posting order with batched commits); with --simulate, replay that program instead of the schedule's data flow")
	freeAtW := fs.Bool("free-at-w", false, "for peak activations, free a micro-batch's activations at W instead of at b")
	run := fs.Bool("run", false, "run one step across --ranks processes over pipeline/p2p, with stages that sleep for the --cost times in milliseconds (an F&B pair runs as its F then its B, so FB is taken as F+B), and print per rank the measured busy and idle time next to the simulated, then both makespans; with --svg, draw both timelines in one picture")
	transport := fs.String("transport", "unix", "with --run: the sockets between the rank processes, unix or tcp")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --run: deadline of the whole run")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if *text && *asJSON {
		fmt.Fprintln(stderr, "fireflyer schedule: --text and --json are exclusive")
		return exitUsage
	}
	for _, err := range []error{
		onlyWith(fs, *simulate || *run, "--simulate or --run", "cost", "p2p", "free-at-w"),
		onlyWith(fs, *run, "--run", "transport", "timeout"),
	} {
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitUsage
		}
	}
	if *svg == "-" && (*text || *asJSON) {
		fmt.Fprintln(stderr, "fireflyer schedule: --svg - writes the picture to standard output; drop --text/--json")
		return exitUsage
	}
	if *run {
		switch {
		case *text || *asJSON:
			fmt.Fprintln(stderr, "fireflyer schedule: --run prints its own lines; drop --text/--json")
			return exitUsage
		case *transport != "unix" && *transport != "tcp":
			fmt.Fprintf(stderr, "fireflyer schedule: --transport %q is not unix or tcp\n", *transport)
			return exitUsage
		case *timeout <= 0:
			fmt.Fprintf(stderr, "fireflyer schedule: --timeout %v must be positive\n", *timeout)
			return exitUsage
		case *ranks < 1 || *ranks > 64:
			fmt.Fprintf(stderr, "fireflyer schedule: --run --ranks %d: want 1…64 processes\n", *ranks)
			return exitUsage
		}
	}
	if err := checkOutFile("svg", *svg); err != nil {
		fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
		return exitUsage
	}
	if *chunks == 0 {
		*chunks = 2 * *ranks
	}
	s, err := pipeline.Generate(pipeline.Method(strings.ToLower(*method)), *ranks, *chunks)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
		return exitUsage
	}
	var prog *pipeline.Program
	switch *lower {
	case "", "dataflow":
		prog, err = pipeline.Lower(s)
	case "reference":
		prog, err = pipeline.LowerReference(s)
	default:
		fmt.Fprintf(stderr, "fireflyer schedule: --lower %q is not dataflow or reference\n", *lower)
		return exitUsage
	}
	if err == nil {
		err = prog.Check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
		return exitFail
	}

	if *run {
		opt, scale, err := parseCosts(*costs, *p2p)
		if err == nil && scale > 1000 {
			err = fmt.Errorf("--cost/--p2p: with --run, times are milliseconds with at most 3 decimals (µs)")
		}
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitUsage
		}
		us := func(v int64) int64 { return v * (1000 / scale) }
		c := opt.Costs
		opt.Costs = pipeline.OpCosts{F: us(c.F), B: us(c.B), W: us(c.W), FB: us(c.F) + us(c.B)}
		opt.P2P, opt.FreeAtW = us(opt.P2P), *freeAtW
		var sim *pipeline.Report
		if *lower != "" {
			sim, err = pipeline.SimulateProgram(prog, opt)
		} else {
			sim, err = pipeline.Simulate(s, opt)
		}
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitUsage
		}
		cfg := scheduleRunConfig{Method: s.Method, Ranks: s.Ranks, Chunks: s.Chunks, Reference: *lower == "reference", Costs: opt.Costs, Timeout: *timeout}
		measured, err := scheduleRun(context.Background(), cfg, *transport)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule --run: %v\n", err)
			return exitFail
		}
		return printScheduleRun(stdout, stderr, s, measured, sim, *svg)
	}

	var rep *pipeline.Report
	var scale int64 = 1
	var opt pipeline.SimOptions
	if *simulate {
		var err error
		opt, scale, err = parseCosts(*costs, *p2p)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitUsage
		}
		opt.FreeAtW = *freeAtW
		if *lower != "" {
			rep, err = pipeline.SimulateProgram(prog, opt)
		} else {
			rep, err = pipeline.Simulate(s, opt)
		}
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			if errors.Is(err, pipeline.ErrParam) {
				return exitUsage
			}
			return exitFail
		}
	}

	if *svg != "" {
		var buf bytes.Buffer
		if err := pipesvg.Write(&buf, s, pipesvg.Options{Report: rep}); err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitFail
		}
		if *svg == "-" {
			if _, err := stdout.Write(buf.Bytes()); err != nil {
				fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
				return exitFail
			}
			return exitOK
		}
		if err := os.WriteFile(*svg, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: --svg: %v\n", err)
			return exitFail
		}
		// The picture goes to the file; standard output keeps what the
		// other flags ask for (the --svg convention: "prints nothing extra").
	}

	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if *asJSON {
		out := scheduleJSON{
			Method: string(s.Method), Ranks: s.Ranks, Chunks: s.Chunks,
			Pipes: s.Pipes, Stages: s.Stages, MicroBatches: s.Micro,
			Ops: make([][]string, s.Ranks),
		}
		for r, ops := range s.Ops {
			out.Ops[r] = make([]string, len(ops))
			for i, o := range ops {
				out.Ops[r][i] = o.String()
			}
		}
		if *lower != "" {
			for _, l := range prog.Lines() {
				_, body, _ := strings.Cut(l, ": ")
				out.Program = append(out.Program, strings.Fields(body))
			}
		}
		if rep != nil {
			out.Simulated = true
			out.Costs = map[string]json.Number{
				"F": decimal(opt.Costs.F, scale), "B": decimal(opt.Costs.B, scale),
				"W": decimal(opt.Costs.W, scale), "FB": decimal(opt.Costs.FB, scale),
			}
			p := decimal(opt.P2P, scale)
			out.P2P = &p
			m := decimal(rep.Makespan, scale)
			out.Makespan = &m
			br := rep.BubbleRatio
			out.BubbleRatio = &br
			for r := range rep.Busy {
				out.Busy = append(out.Busy, decimal(rep.Busy[r], scale))
				out.Idle = append(out.Idle, decimal(rep.Idle[r], scale))
			}
			out.PeakActivations = rep.PeakActivations
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "fireflyer schedule: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if rep != nil {
		// --simulate prints the simulation, also with --lower.
		for r := range rep.Busy {
			fmt.Fprintf(w, "r%d: busy %s idle %s peak %d\n", r, decimal(rep.Busy[r], scale), decimal(rep.Idle[r], scale), rep.PeakActivations[r])
		}
		fmt.Fprintf(w, "makespan %s bubble_ratio %s\n", decimal(rep.Makespan, scale), strconv.FormatFloat(rep.BubbleRatio, 'f', 4, 64))
		return exitOK
	}
	lines := s.Lines()
	if *lower != "" {
		lines = prog.Lines()
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return exitOK
}

type scheduleJSON struct {
	Method          string                 `json:"method"`
	Ranks           int                    `json:"ranks"`
	Chunks          int                    `json:"chunks"`
	Pipes           int                    `json:"pipes"`
	Stages          int                    `json:"stages"`
	MicroBatches    int                    `json:"micro_batches_per_pipe"`
	Ops             [][]string             `json:"ops"`
	Program         [][]string             `json:"program,omitempty"`
	Simulated       bool                   `json:"simulated"`
	Costs           map[string]json.Number `json:"costs,omitempty"`
	P2P             *json.Number           `json:"p2p,omitempty"`
	Makespan        *json.Number           `json:"makespan,omitempty"`
	BubbleRatio     *float64               `json:"bubble_ratio,omitempty"`
	Busy            []json.Number          `json:"busy,omitempty"`
	Idle            []json.Number          `json:"idle,omitempty"`
	PeakActivations []int                  `json:"peak_activations,omitempty"`
}

// parseCosts parses "F=1,B=2,W=1,FB=3" and a latency. Values are exact
// decimals; all are scaled by the same power of ten so the simulator works
// in integers. It returns the options and the scale.
func parseCosts(spec, p2p string) (pipeline.SimOptions, int64, error) {
	vals := map[string]*big.Rat{}
	for _, kv := range strings.Split(spec, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToUpper(strings.TrimSpace(k))
		if k == "F&B" {
			k = "FB"
		}
		if !ok || (k != "F" && k != "B" && k != "W" && k != "FB") {
			return pipeline.SimOptions{}, 0, fmt.Errorf("--cost: %q is not F=, B=, W= or FB=<number>", kv)
		}
		if _, dup := vals[k]; dup {
			return pipeline.SimOptions{}, 0, fmt.Errorf("--cost: %s given twice", k)
		}
		r, err := parseDecimal(strings.TrimSpace(v))
		if err != nil {
			return pipeline.SimOptions{}, 0, fmt.Errorf("--cost: %s: %v", k, err)
		}
		vals[k] = r
	}
	def := map[string]int64{"F": 1, "B": 2, "W": 1}
	for k, d := range def {
		if vals[k] == nil {
			vals[k] = big.NewRat(d, 1)
		}
	}
	if vals["FB"] == nil {
		vals["FB"] = new(big.Rat).Add(vals["F"], vals["B"])
	}
	lat, err := parseDecimal(strings.TrimSpace(p2p))
	if err != nil {
		return pipeline.SimOptions{}, 0, fmt.Errorf("--p2p: %v", err)
	}
	vals["P2P"] = lat
	// Smallest power of ten that makes every value an integer.
	var scale int64 = 1
	for _, v := range vals {
		for !new(big.Rat).Mul(v, big.NewRat(scale, 1)).IsInt() {
			scale *= 10
		}
	}
	conv := func(k string) (int64, error) {
		x := new(big.Rat).Mul(vals[k], big.NewRat(scale, 1))
		if !x.Num().IsInt64() || x.Num().Int64() > 1<<40 {
			return 0, fmt.Errorf("%s=%s is too large", k, vals[k].FloatString(6))
		}
		return x.Num().Int64(), nil
	}
	var c pipeline.OpCosts
	var out pipeline.SimOptions
	for _, p := range []struct {
		k string
		d *int64
	}{{"F", &c.F}, {"B", &c.B}, {"W", &c.W}, {"FB", &c.FB}, {"P2P", &out.P2P}} {
		v, err := conv(p.k)
		if err != nil {
			flag := "--cost"
			if p.k == "P2P" {
				flag = "--p2p"
			}
			return pipeline.SimOptions{}, 0, fmt.Errorf("%s: %v", flag, err)
		}
		*p.d = v
	}
	if c.W > c.B {
		return pipeline.SimOptions{}, 0, fmt.Errorf("--cost: W must be ≤ B (b = B−W)")
	}
	out.Costs = c
	return out, scale, nil
}

// parseDecimal accepts a non-negative decimal with at most 6 fraction digits.
func parseDecimal(s string) (*big.Rat, error) {
	if s == "" {
		return nil, fmt.Errorf("empty number")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 6 || strings.ContainsAny(s, "eE+-/") {
		return nil, fmt.Errorf("%q is not a non-negative decimal with at most 6 fraction digits", s)
	}
	for _, ch := range whole + frac {
		if ch < '0' || ch > '9' {
			return nil, fmt.Errorf("%q is not a non-negative decimal", s)
		}
	}
	if len(whole) > 13 {
		return nil, fmt.Errorf("%q is too large", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	return r, nil
}

// decimal formats v/scale exactly (scale is a power of ten).
func decimal(v, scale int64) json.Number {
	r := big.NewRat(v, scale)
	if r.IsInt() {
		return json.Number(r.Num().String())
	}
	s := r.FloatString(6)
	s = strings.TrimRight(s, "0")
	return json.Number(strings.TrimSuffix(s, "."))
}
