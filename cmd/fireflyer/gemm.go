package main

import (
	"context"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"
	"io"
	"time"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	_ "github.com/fireflyer-go/fireflyer/gemm/ref" // registers "ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

func init() {
	register(command{name: "gemm", summary: "run one FP8 block-scaled GEMM (DeepGEMM fp8_gemm_nt, the nn/tn/tt layouts, k-grouped wgrad, or fp8_fp4_gemm_nt with --fp4) on random data, check it and time it", run: runGemm})
}

// gemmResult is the --json output of fireflyer gemm.
type gemmResult struct {
	Backend          string  `json:"backend"`
	Kernel           string  `json:"kernel,omitempty"`
	M                int     `json:"m"`
	N                int     `json:"n"`
	K                int     `json:"k"`
	Scales           string  `json:"scales"`
	CalcDiffUnquant  float64 `json:"calc_diff_unquantized"`
	CalcDiffDequant  float64 `json:"calc_diff_dequantized"`
	Seconds          float64 `json:"seconds"`
	GFLOPS           float64 `json:"gflops"`
	Pass             bool    `json:"pass"`
	GateUnquantized  float64 `json:"gate_unquantized"`
	GateDequantized  float64 `json:"gate_dequantized"`
	RepeatsForTiming int     `json:"repeats"`
	// Layout and the k-grouped fields describe the training calls
	// (--layout, --kgrouped; see gemm_training.go).
	Layout    string `json:"layout"`
	KGrouped  bool   `json:"kgrouped,omitempty"`
	Groups    int    `json:"groups,omitempty"`
	FP4ScaleK int    `json:"fp4_scale_k,omitempty"` // with --fp4: K-elements per B scale
}

// maxGemmRepeats bounds --repeats so that a mistyped count cannot run for
// days (the default is 3; one run of the largest shape takes seconds).
const maxGemmRepeats = 1000

func runGemm(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("gemm", "gemm [flags]", stderr)
	m := fs.Int("m", 128, "rows of A and D (tokens)")
	n := fs.Int("n", 2112, "rows of B, columns of D (output features)")
	k := fs.Int("k", 7168, "shared dimension (input features)")
	backend := fs.String("backend", "cpu", "backend: cpu or ref")
	ue8m0 := fs.Bool("ue8m0", false, "round scales to powers of two (UE8M0)")
	repeats := fs.Int("repeats", 3, "timed runs, 1 … 1000 (best kept)")
	seed := fs.Uint64("seed", 1, "random seed")
	asJSON := fs.Bool("json", false, "print one JSON object")
	layout := fs.String("layout", "", "operand layout: nt, nn, tn or tt (DeepGEMM fp8_gemm_{nt,nn,tn,tt}); with --kgrouped tn or nt (default: nt, with --kgrouped tn)")
	kgrouped := fs.Bool("kgrouped", false, "run the k-grouped weight-gradient GEMM (k_grouped_fp8_gemm_{tn,nt}_contiguous): --groups groups of K = -k each, D [groups, m, n] float32")
	groups := fs.Int("groups", 8, "groups of the k-grouped GEMM, 1 … 256")
	fp4 := addGemmFP4Flags(fs)
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if !fp4.check(*k, stderr) {
		return exitUsage
	}
	for _, err := range []error{onlyWith(fs, *kgrouped, "--kgrouped", "groups"), onlyWith(fs, *fp4.on, "--fp4", "fp4-gran")} {
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer gemm: %v\n", err)
			return exitUsage
		}
	}
	if *m < 1 || *n < 1 || *k < 1 || *m**n > 1<<26 || *n**k > 1<<28 || *m**k > 1<<28 {
		fmt.Fprintf(stderr, "fireflyer gemm: -m, -n, -k must be ≥ 1 and at most 2^26 outputs, 2^28 inputs (got %d, %d, %d)\n", *m, *n, *k)
		return exitUsage
	}
	if *repeats < 1 || *repeats > maxGemmRepeats {
		fmt.Fprintf(stderr, "fireflyer gemm: --repeats %d: want 1 … %d\n", *repeats, maxGemmRepeats)
		return exitUsage
	}
	if *layout == "" {
		*layout = "nt"
		if *kgrouped {
			*layout = "tn"
		}
	}
	if *fp4.on && (*layout != "nt" || *kgrouped) {
		fmt.Fprintf(stderr, "fireflyer gemm: --fp4 runs the NT layout only (got --layout %s, --kgrouped=%v)\n", *layout, *kgrouped)
		return exitUsage
	}
	if err := checkTrainingFlags(*layout, *kgrouped, *groups, *k); err != nil {
		fmt.Fprintf(stderr, "fireflyer gemm: %v\n", err)
		return exitUsage
	}
	res := gemmResult{Backend: *backend, Layout: *layout, M: *m, N: *n, K: *k, Scales: "f32", RepeatsForTiming: *repeats,
		GateUnquantized: oracle.GateUnquantized, GateDequantized: oracle.GateDequantized}
	be, err := gemm.NewBackend(*backend, gemm.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer gemm: -backend must be cpu or ref (got %q)\n", *backend)
		return exitUsage
	}
	if cb, ok := be.(*cpu.Backend); ok {
		res.Kernel = cb.Kernel()
	}
	if *ue8m0 {
		res.Scales = "ue8m0"
	}
	if *kgrouped {
		return runKGrouped(be, res, *groups, *seed, *ue8m0, *asJSON, stdout, stderr)
	}
	s := oracle.Shape{M: *m, N: *n, K: *k}
	opt := tensor.QuantOptions{UE8M0: *ue8m0}
	d := oracle.NewOut(s.M, s.N, 0, false, 0)
	ctx := context.Background()
	var c gemmCase
	if *fp4.on {
		c = fp4.fp4Case(*seed, s, opt, be, d)
		res.GateUnquantized, res.FP4ScaleK = c.gateUnquantized, *fp4.gran
	} else {
		p := oracle.NewProblem(*seed, s, opt)
		call := layoutCall(ctx, be, *layout, p)
		c = gemmCase{call: func(context.Context) error { return call(d) },
			x: p.X, y: p.Y, dx: p.DA, dy: p.DB, gateUnquantized: oracle.GateUnquantized}
	}
	for i := 0; i < *repeats; i++ {
		t := time.Now()
		if err := c.call(ctx); err != nil {
			fmt.Fprintf(stderr, "fireflyer gemm: %v\n", err)
			return exitFail
		}
		if e := time.Since(t).Seconds(); i == 0 || e < res.Seconds {
			res.Seconds = e
		}
	}
	res.GFLOPS = 2 * float64(s.M) * float64(s.N) * float64(s.K) / res.Seconds / 1e9
	got := oracle.OutF64(d)
	res.CalcDiffUnquant = testutil.CalcDiff(got, oracle.MatMulNT64(c.x, c.y, s.M, s.N, s.K))
	res.CalcDiffDequant = testutil.CalcDiff(got, oracle.MatMulNT64(c.dx, c.dy, s.M, s.N, s.K))
	res.Pass = res.CalcDiffUnquant < res.GateUnquantized && res.CalcDiffDequant < res.GateDequantized
	if *asJSON {
		if c := writeJSON(stdout, stderr, "gemm", res); c != exitOK {
			return c
		}
	} else {
		kern := ""
		if res.Kernel != "" {
			kern = " (" + res.Kernel + ")"
		}
		lay := ""
		if res.Layout != "nt" {
			lay = "  layout " + res.Layout
		}
		if res.FP4ScaleK > 0 {
			lay += fmt.Sprintf("  B fp4 e2m1 1×%d", res.FP4ScaleK)
		}
		fmt.Fprintf(stdout, "backend %s%s  M=%d N=%d K=%d  scales %s%s\n", res.Backend, kern, s.M, s.N, s.K, res.Scales, lay)
		fmt.Fprintf(stdout, "calc_diff vs unquantized float64: %.3g (gate %.0e)\n", res.CalcDiffUnquant, res.GateUnquantized)
		fmt.Fprintf(stdout, "calc_diff vs dequantized float64: %.3g (gate %.0e)\n", res.CalcDiffDequant, res.GateDequantized)
		fmt.Fprintf(stdout, "best of %d: %.3f ms, %.1f GFLOP/s\n", *repeats, res.Seconds*1e3, res.GFLOPS)
		if res.Pass {
			fmt.Fprintln(stdout, "PASS")
		} else {
			fmt.Fprintln(stdout, "FAIL")
		}
	}
	if !res.Pass {
		return exitFail
	}
	return exitOK
}
