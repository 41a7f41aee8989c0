package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/eprank"
	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func init() {
	register(command{name: "ep", summary: "expert-parallel dispatch/combine benchmark (DeepEP normal and low-latency)", run: runEP})
}

// maxEPIters bounds --iters (a run-length flag; --timeout bounds the time).
const maxEPIters = 100000

// epBenchConfig is what every rank runs.
type epBenchConfig struct {
	Transport  string `json:"transport"`
	Ranks      int    `json:"ranks"`
	Tokens     int    `json:"tokens"`
	Hidden     int    `json:"hidden"`
	TopK       int    `json:"topk"`
	Experts    int    `json:"experts"`
	Iters      int    `json:"iters"`
	FP8        bool   `json:"fp8"`
	LowLatency bool   `json:"low_latency"`
	// Progress (a bar on rank 0's stderr) and Timeout (the whole run) are
	// not part of the report.
	Progress bool          `json:"-"`
	Timeout  time.Duration `json:"-"`
}

// epRankResult is one rank's measurement.
type epRankResult struct {
	Rows     int64   `json:"rows"`     // normal: rows received per iteration
	Selected int64   `json:"selected"` // low-latency: non-(−1) top-k entries sent
	Disp     float64 `json:"dispatch"` // seconds, all iterations
	Comb     float64 `json:"combine"`  // seconds, all iterations
}

// epReport is the command's result (and its --json object).
type epReport struct {
	epBenchConfig
	DispatchUS    float64 `json:"dispatch_us"`
	CombineUS     float64 `json:"combine_us"`
	DispatchBytes float64 `json:"dispatch_bytes"`
	CombineBytes  float64 `json:"combine_bytes"`
	DispatchGBps  float64 `json:"dispatch_gbps"`
	CombineGBps   float64 `json:"combine_gbps"`
}

func runEP(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		args = []string{"bench", "-h"} // the only verb: show its flags
	}
	if len(args) == 0 || args[0] != "bench" {
		fmt.Fprintln(stderr, "fireflyer ep: want the verb bench (fireflyer ep bench -h)")
		return exitUsage
	}
	fs := newFlagSet("ep bench", "ep bench --transport inproc|tcp|unix|ucx --ranks R --tokens N --hidden H --topk K --experts E [--fp8] [--low-latency] [--json]", stderr)
	cfg := epBenchConfig{}
	fs.StringVar(&cfg.Transport, "transport", "inproc", "transport: inproc (goroutine ranks), tcp, unix or ucx (one process per rank, started by this command; ucx honours UCX_TLS)")
	fs.IntVar(&cfg.Ranks, "ranks", 8, "number of ranks R")
	fs.IntVar(&cfg.Tokens, "tokens", 4096, "tokens per rank N (low-latency: also the maximum M)")
	fs.IntVar(&cfg.Hidden, "hidden", 7168, "hidden size H")
	fs.IntVar(&cfg.TopK, "topk", 8, "experts per token K")
	fs.IntVar(&cfg.Experts, "experts", 256, "number of experts E (a multiple of R)")
	fs.IntVar(&cfg.Iters, "iters", 5, fmt.Sprintf("timed iterations (after one warm-up), at most %d", maxEPIters))
	fs.BoolVar(&cfg.FP8, "fp8", false, "dispatch in FP8 (normal: pre-quantized e4m3 with float32 scales; low-latency: quantized on the way)")
	fs.BoolVar(&cfg.LowLatency, "low-latency", false, "run LowLatencyDispatch/LowLatencyCombine instead of the normal kernels")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "give up after this long (every wait of every rank; rank processes still running then are killed)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the report")
	if code, ok := parseNoArgs(fs, args[1:], stderr); !ok {
		return code
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "fireflyer ep bench: %v\n", err)
		return exitUsage
	}
	cfg.Progress = isTerminal(stderr)
	var rep *epReport
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	if cfg.Transport == "inproc" {
		rep, err = epBenchInproc(ctx, cfg, stderr)
	} else {
		rep, err = epBenchProcesses(ctx, cfg, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer ep bench: %v\n", err)
		return exitFail
	}
	if *jsonOut {
		return writeJSON(stdout, stderr, "ep bench", rep)
	}
	rep.print(stdout)
	return exitOK
}

func (c *epBenchConfig) validate() error {
	switch {
	case c.Transport != "inproc" && !eprank.IsProcess(c.Transport):
		return fmt.Errorf("--transport %q: want inproc, tcp, unix or ucx", c.Transport)
	case c.Ranks < 1 || c.Ranks > 64:
		return fmt.Errorf("--ranks %d: want 1..64", c.Ranks)
	case c.Tokens < 1:
		return fmt.Errorf("--tokens %d: want ≥ 1", c.Tokens)
	case c.Hidden < 1:
		return fmt.Errorf("--hidden %d: want ≥ 1", c.Hidden)
	case c.Experts < 1 || c.Experts%c.Ranks != 0:
		return fmt.Errorf("--experts %d: want a positive multiple of --ranks %d", c.Experts, c.Ranks)
	case c.TopK < 1 || c.TopK > c.Experts:
		return fmt.Errorf("--topk %d: want 1..--experts", c.TopK)
	case c.Iters < 1 || c.Iters > maxEPIters:
		return fmt.Errorf("--iters %d: want 1..%d", c.Iters, maxEPIters)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", c.Timeout)
	case c.LowLatency && c.TopK > 64:
		return fmt.Errorf("--topk %d: low-latency mode allows at most 64", c.TopK)
	case c.FP8 && c.LowLatency && c.Hidden%128 != 0:
		return fmt.Errorf("--hidden %d: FP8 low-latency dispatch needs a multiple of 128", c.Hidden)
	}
	if need, have := c.memoryEstimate(), epMemTotal(); need > 1<<40 || have > 0 && need > float64(have) {
		return fmt.Errorf("--ranks %d --tokens %d --hidden %d --topk %d: needs about %.1f GiB of memory, more than this machine's %.1f GiB",
			c.Ranks, c.Tokens, c.Hidden, c.TopK, need/(1<<30), float64(have)/(1<<30))
	}
	return nil
}

// memoryEstimate is a rough upper bound, in bytes, of what all ranks of the
// benchmark touch on this host together (inputs, outputs, received rows and
// region), computed in float64 so that huge flags cannot overflow: normal
// mode about R·N·H·2·(4+2·min(K,R)), low-latency mode R·N·H·2·(4+6·K) (its
// per-expert receive layout holds every selection).
func (c *epBenchConfig) memoryEstimate() float64 {
	rows := float64(c.Ranks) * float64(c.Tokens) * float64(c.Hidden) * 2
	if c.LowLatency {
		return rows * (4 + 6*float64(c.TopK))
	}
	return rows * (4 + 2*float64(min(c.TopK, c.Ranks)))
}

// epMemTotal is the machine's memory in bytes from /proc/meminfo, or 0 when
// unknown (the memory check then only rejects absurd sizes).
func epMemTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func (r *epReport) print(w io.Writer) {
	mode, enc := "normal", "BF16"
	if r.LowLatency {
		mode = "low-latency"
	}
	if r.FP8 {
		enc = "FP8"
	}
	fmt.Fprintf(w, "[ep bench] %s mode, transport %s, %d ranks, %d tokens/rank, hidden %d, top-%d of %d experts, %s dispatch, BF16 combine, %d iterations\n",
		mode, r.Transport, r.Ranks, r.Tokens, r.Hidden, r.TopK, r.Experts, enc, r.Iters)
	unit := "NVL"
	if r.LowLatency {
		unit = "LL"
	}
	fmt.Fprintf(w, "[dispatch] %.1f us, %.2f GB/s (%s bytes %.1f MB)\n", r.DispatchUS, r.DispatchGBps, unit, r.DispatchBytes/1e6)
	fmt.Fprintf(w, "[combine]  %.1f us, %.2f GB/s (%s bytes %.1f MB)\n", r.CombineUS, r.CombineGBps, unit, r.CombineBytes/1e6)
}

// epAggregate turns per-rank results into the report with upstream's byte
// definitions: normal mode counts the BF16 bytes every rank receives (its
// own tokens included; FP8 dispatch × (1+4/128)/2); low-latency mode counts
// H + 4H/128 + 16 bytes (FP8) or 2H (BF16) per dispatched selection and 2H
// per combined one. Times are the slowest rank's mean.
func epAggregate(cfg epBenchConfig, rs []epRankResult) *epReport {
	rep := &epReport{epBenchConfig: cfg}
	var rows, sel int64
	var td, tc float64
	for _, r := range rs {
		rows += r.Rows
		sel += r.Selected
		td, tc = max(td, r.Disp), max(tc, r.Comb)
	}
	h := float64(cfg.Hidden)
	if cfg.LowLatency {
		msg := 2 * h
		if cfg.FP8 {
			msg = h + 4*h/128 + 16
		}
		rep.DispatchBytes = float64(sel) * msg
		rep.CombineBytes = float64(sel) * 2 * h
	} else {
		rep.CombineBytes = float64(rows) * 2 * h
		rep.DispatchBytes = rep.CombineBytes
		if cfg.FP8 {
			rep.DispatchBytes *= (1 + 4.0/128) / 2
		}
	}
	n := float64(cfg.Iters)
	rep.DispatchUS, rep.CombineUS = td/n*1e6, tc/n*1e6
	rep.DispatchGBps = rep.DispatchBytes / (td / n) / 1e9
	rep.CombineGBps = rep.CombineBytes / (tc / n) / 1e9
	return rep
}

func epBenchInproc(ctx context.Context, cfg epBenchConfig, stderr io.Writer) (*epReport, error) {
	rs := make([]epRankResult, cfg.Ranks)
	err := inproc.Run(ctx, cfg.Ranks, func(ctx context.Context, t ep.Transport) error {
		r, err := epBenchRank(ctx, t, cfg, stderr)
		rs[t.Rank()] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return epAggregate(cfg, rs), nil
}

// epRankArgs is what a rank process of `ep bench` is told: the
// configuration and whether rank 0 draws the progress bar.
type epRankArgs struct {
	Config   epBenchConfig `json:"config"`
	Progress bool          `json:"progress"`
}

// epBenchProcesses runs one process per rank (this executable again, as
// `fireflyer rank ep-bench CONFIG`) through sock.Launch and returns rank
// 0's report, which it prints as JSON on its standard output.
func epBenchProcesses(ctx context.Context, cfg epBenchConfig, stderr io.Writer) (*epReport, error) {
	js, err := json.Marshal(epRankArgs{Config: cfg, Progress: cfg.Progress})
	if err != nil {
		return nil, err
	}
	lc := sock.LaunchConfig{Network: eprank.Network(cfg.Transport), WorldSize: cfg.Ranks, Args: []string{"rank", "ep-bench", string(js)},
		Env: eprank.Env(cfg.Transport), Timeout: cfg.Timeout}
	if cfg.Progress {
		lc.Stderr = func(r int) io.Writer {
			if r == 0 {
				return stderr // rank 0's progress bar
			}
			return nil
		}
	}
	exits, err := sock.Launch(ctx, lc)
	if err != nil {
		return nil, err
	}
	var rep epReport
	if err := json.Unmarshal(exits[0].Stdout, &rep); err != nil {
		return nil, fmt.Errorf("rank 0 report: %w", err)
	}
	rep.Progress, rep.Timeout = cfg.Progress, cfg.Timeout
	return &rep, nil
}

// epRankMain is one rank process of `ep bench --transport tcp|unix|ucx`
// (`fireflyer rank ep-bench CONFIG`, started by sock.Launch): it joins the
// group, runs the benchmark within the launcher's deadline, all-gathers the
// ranks' results, and rank 0 prints the aggregated report as JSON on
// stdout.
func epRankMain(args []string, stdout, stderr io.Writer) int {
	var ra epRankArgs
	if len(args) != 1 {
		fmt.Fprintln(stderr, "fireflyer rank ep-bench: want one argument, the configuration (JSON)")
		return exitUsage
	}
	if err := json.Unmarshal([]byte(args[0]), &ra); err != nil {
		fmt.Fprintln(stderr, "fireflyer rank ep-bench:", err)
		return exitUsage
	}
	cfg := ra.Config
	cfg.Progress = ra.Progress
	opts, ctx, cancel, err := sock.LaunchedOptions(context.Background())
	defer cancel()
	if err != nil {
		fmt.Fprintln(stderr, "fireflyer rank ep-bench:", err)
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "fireflyer ep bench: rank %d: %v\n", opts.Rank, err)
		return exitFail
	}
	t, err := eprank.DialLaunched(ctx, opts)
	if err != nil {
		return fail(err)
	}
	defer t.Close()
	r, err := epBenchRank(ctx, t, cfg, stderr)
	if err != nil {
		return fail(err)
	}
	mine, _ := json.Marshal(r)
	all, err := t.AllGather(ctx, mine)
	if err != nil {
		return fail(err)
	}
	if t.Rank() == 0 {
		rs := make([]epRankResult, len(all))
		for i, b := range all {
			if err := json.Unmarshal(b, &rs[i]); err != nil {
				return fail(err)
			}
		}
		if err := json.NewEncoder(stdout).Encode(epAggregate(cfg, rs)); err != nil {
			return fail(err)
		}
	}
	// Let every rank read the all-gather before anyone leaves.
	if err := t.Barrier(ctx); err != nil {
		return fail(err)
	}
	return exitOK
}

// epBenchRank runs the benchmark on one rank: one warm-up, then cfg.Iters
// timed dispatch+combine rounds, each started after a barrier.
func epBenchRank(ctx context.Context, t ep.Transport, cfg epBenchConfig, stderr io.Writer) (epRankResult, error) {
	me := t.Rank()
	rng := rand.New(rand.NewPCG(uint64(me)+1, 0xEB))
	n, h, k, e := cfg.Tokens, cfg.Hidden, cfg.TopK, cfg.Experts
	x := make([]tensor.BF16, n*h)
	for i := range x {
		x[i] = tensor.BF16FromFloat32(float32(rng.Float64()*2-1) * 0.5)
	}
	idx := testutil.RandomTopK(rng, n, k, e)
	w := make([]float32, n*k)
	for i := range w {
		w[i] = rng.Float32()
	}
	topk := ep.TopK{K: k, Idx: idx, Weights: w}
	var res epRankResult
	var bar *progressbar.ProgressBar
	if me == 0 && cfg.Progress {
		bar = progressbar.NewOptions(cfg.Iters+1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("ep bench"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
		defer bar.Finish()
	}
	var run func() (time.Duration, time.Duration, error)
	if cfg.LowLatency {
		b, err := ep.New(ctx, t, ep.Options{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: n, Hidden: h, NumExperts: e, MaxTopK: k}})
		if err != nil {
			return res, err
		}
		defer b.Close()
		for _, v := range idx {
			if v >= 0 {
				res.Selected++
			}
		}
		xt := ep.Tokens{N: n, Hidden: h, BF16: x}
		out := make([]tensor.BF16, n*h)
		run = func() (time.Duration, time.Duration, error) {
			t0 := time.Now()
			r, err := b.LowLatencyDispatch(ctx, xt, topk, ep.LowLatencyOptions{UseFP8: cfg.FP8})
			if err != nil {
				return 0, 0, err
			}
			t1 := time.Now()
			_, err = b.LowLatencyCombine(ctx, nil, topk, r.Handle, ep.LowLatencyCombineOptions{ZeroCopy: true, Out: out})
			return t1.Sub(t0), time.Since(t1), err
		}
	} else {
		l, err := ep.ComputeLayout(topk, n, cfg.Ranks, e)
		if err != nil {
			return res, err
		}
		// Size the region from the actual traffic: every rank's receive
		// count and send count, all-gathered.
		var sent int32
		for _, v := range l.PerRank {
			sent += v
		}
		all, err := t.AllGather(ctx, tensor.Bytes(append(append([]int32{}, l.PerRank...), sent)))
		if err != nil {
			return res, err
		}
		maxRows := 0
		recv := make([]int, cfg.Ranks)
		for _, p := range all {
			v := bytesToI32(p)
			for d := 0; d < cfg.Ranks; d++ {
				recv[d] += int(v[d])
			}
			maxRows = max(maxRows, int(v[cfg.Ranks]))
		}
		for _, v := range recv {
			maxRows = max(maxRows, v)
		}
		res.Rows = int64(recv[me])
		b, err := ep.New(ctx, t, ep.Options{NormalBytes: ep.NormalSizeHint(maxRows, h, k), MaxExperts: max(e, ep.DefaultMaxExperts)})
		if err != nil {
			return res, err
		}
		defer b.Close()
		xt := ep.Tokens{N: n, Hidden: h, BF16: x}
		var y []tensor.BF16
		if cfg.FP8 {
			q, err := tensor.QuantizePerTokenBF16(x, n, h, tensor.QuantOptions{})
			if err == nil {
				xt, err = ep.TokensFromFP8(q)
			}
			if err != nil {
				return res, err
			}
			y = make([]tensor.BF16, recv[me]*h)
		}
		out := make([]tensor.BF16, n*h)
		run = func() (time.Duration, time.Duration, error) {
			t0 := time.Now()
			r, err := b.Dispatch(ctx, xt, &topk, ep.DispatchOptions{NumExperts: e, Layout: l})
			if err != nil {
				return 0, 0, err
			}
			t1 := time.Now()
			in := r.X.BF16
			if cfg.FP8 {
				in = y
			}
			_, err = b.Combine(ctx, in, r.Handle, ep.CombineOptions{Weights: r.Weights, TopK: k, Out: out})
			return t1.Sub(t0), time.Since(t1), err
		}
	}
	for it := -1; it < cfg.Iters; it++ {
		if err := t.Barrier(ctx); err != nil {
			return res, err
		}
		d, c, err := run()
		if err != nil {
			return res, err
		}
		if it >= 0 {
			res.Disp += d.Seconds()
			res.Comb += c.Seconds()
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	return res, nil
}

func bytesToI32(p []byte) []int32 {
	out := make([]int32, len(p)/4)
	for i := range out {
		out[i] = int32(uint32(p[4*i]) | uint32(p[4*i+1])<<8 | uint32(p[4*i+2])<<16 | uint32(p[4*i+3])<<24)
	}
	return out
}
