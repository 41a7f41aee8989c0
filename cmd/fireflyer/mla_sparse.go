package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// wantsSparse reports whether check/bench args ask for a sparse or FP8-cache
// case (--sparse or --fp8-cache set before any "--").
func wantsSparse(args []string) bool {
	return wantsSparseFlag(args, "sparse") || wantsSparseFlag(args, "fp8-cache")
}

// withoutSparseFlags returns args without --sparse/--fp8-cache flags (all
// false when wantsSparse is false), for the dense flag set.
func withoutSparseFlags(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (n == "sparse" || n == "fp8-cache") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// runMLASparse is `mla check|bench --sparse [--fp8-cache]` (sparse decode
// over the V3.2 FP8 cache with --fp8-cache, sparse prefill over float KV
// rows without it) and `mla check --fp8-cache` (dense decode over the FP8
// cache).
func runMLASparse(args []string, stdout, stderr io.Writer, bench bool) int {
	verb := "check"
	if bench {
		verb = "bench"
	}
	fs := newFlagSet("mla "+verb, "mla "+verb+" --sparse [--fp8-cache] [flags]  |  mla "+verb+" --fp8-cache [dense flags]", stderr)
	sparse := fs.Bool("sparse", false, "DeepSeek-V3.2 sparse attention: decode over the FP8 cache with --fp8-cache (flash_mla_with_kvcache with indices), else prefill (flash_mla_sparse_fwd)")
	fp8 := fs.Bool("fp8-cache", false, "the V3.2 656-byte FP8 KV cache (is_fp8_kvcache); without --sparse: dense decode over it")
	var dense *oracle.Case
	var dtype, denseBackend *string
	var topk, extra, dqk *int
	var sink, varlen *bool
	var sc oracle.SparseDecodeCase
	var backend, kernels *string
	if wantsSparseFlag(args, "sparse") {
		fs.IntVar(&sc.B, "b", 4, "decode: batch size")
		fs.IntVar(&sc.SQ, "sq", 1, "query tokens (decode: per request; prefill: s_q)")
		fs.IntVar(&sc.HQ, "hq", 128, "query heads (h_q)")
		fs.IntVar(&sc.SK, "sk", 4096, "decode: cached tokens per request; prefill: s_kv")
		fs.IntVar(&sc.PageSize, "page", 64, "decode: page size in tokens")
		fs.Uint64Var(&sc.Seed, "seed", 1, "data seed")
		topk = fs.Int("topk", 2048, "index row width (topk)")
		extra = fs.Int("extra-topk", 0, "decode: entries per row into an extra FP8 cache (0: none)")
		dqk = fs.Int("dqk", mla.HeadDim, "prefill: query/key width d_qk (decode is always 576)")
		sink = fs.Bool("sink", true, "attn_sink per head (~31% +Inf, ~31% −Inf, the rest N(0,1))")
		varlen = fs.Bool("varlen", false, "topk_length drawn from [0, topk]")
		backend = fs.String("backend", "cpu", "sparse backend: "+strings.Join(mla.SparseBackendNames(), ", "))
		kernels = fs.String("kernels", "", "force the cpu sparse backend's kernels down to avx2, neon or go (default: the best this CPU has)")
	} else {
		dense, dtype, denseBackend = caseFlags(fs)
	}
	reps := fs.Int("rounds", 8, "bench: rounds alternating one timed run of the kernel, the GEMM anchor and the memcpy anchor")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if !*sparse {
		if *dtype != "BF16" {
			fmt.Fprintf(stderr, "fireflyer mla %s: --dtype %s with --fp8-cache: the FP8 cache is its own storage kind\n", verb, *dtype)
			return exitUsage
		}
		return runMLAFP8Check(dense, *denseBackend, bench, *reps, stdout, stderr, *asJSON)
	}
	if !slices.Contains(mla.SparseBackendNames(), *backend) {
		fmt.Fprintf(stderr, "fireflyer mla %s: --backend %q: want one of %v\n", verb, *backend, mla.SparseBackendNames())
		return exitUsage
	}
	be, err := mla.NewSparseBackend(*backend, mla.BackendOptions{Kernels: *kernels})
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla %s: --kernels %q: %v\n", verb, *kernels, err)
		return exitUsage
	}
	if sc.SQ <= 0 || sc.HQ <= 0 || sc.SK < 0 || *topk <= 0 || *extra < 0 {
		fmt.Fprintf(stderr, "fireflyer mla %s: need --sq, --hq, --topk > 0 and --sk, --extra-topk ≥ 0\n", verb)
		return exitUsage
	}
	var res map[string]any
	var checkErr error
	if *fp8 {
		if sc.B <= 0 || sc.PageSize <= 0 {
			fmt.Fprintf(stderr, "fireflyer mla %s: need --b and --page > 0\n", verb)
			return exitUsage
		}
		if tokens := float64(sc.B) * float64(sc.SK+sc.PageSize); tokens > 1<<21 || float64(sc.B*sc.SQ)*float64(sc.HQ)*mla.HeadDim > 1<<26 || float64(sc.B*sc.SQ)*float64(*topk+*extra) > 1<<24 {
			fmt.Fprintf(stderr, "fireflyer mla %s: --b %d --sk %d --sq %d --hq %d --topk %d: at most 2^21 cached tokens, 2^26 query elements and 2^24 index entries\n", verb, sc.B, sc.SK, sc.SQ, sc.HQ, *topk)
			return exitUsage
		}
		sc.TopK, sc.ExtraTopK, sc.Sink, sc.Varlen = *topk, *extra, *sink, *varlen
		if bench {
			m, err := oracle.MeasureSparseDecode(be, sc, 1, *reps)
			return printSparseBench(stdout, stderr, m, err, *asJSON, "sparse")
		}
		in, err := sc.Build()
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
			return exitUsage
		}
		out, lse, err := mla.SparseDecode(context.Background(), be, in.Q, in.Cache, in.Indices, in.TopK, &in.Opts)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
			return exitFail
		}
		refOut, refLSE, err := oracle.SparseDecode(in)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
			return exitFail
		}
		checkErr = oracle.CheckSparseDecode(out, lse, refOut, refLSE)
		res = checkResult("sparse_decode_"+sc.Name(), be.Name(), out, lse, refOut, refLSE)
	} else {
		if *extra != 0 {
			fmt.Fprintf(stderr, "fireflyer mla %s: --extra-topk needs --fp8-cache (the extra cache is a decode argument)\n", verb)
			return exitUsage
		}
		if *dqk <= 0 || float64(sc.SQ)*float64(sc.HQ)*float64(*dqk) > 1<<26 || float64(sc.SK)*float64(*dqk) > 1<<28 || float64(sc.SQ)*float64(*topk) > 1<<24 {
			fmt.Fprintf(stderr, "fireflyer mla %s: --sq %d --hq %d --sk %d --dqk %d --topk %d: need --dqk > 0, at most 2^26 query and 2^28 KV elements and 2^24 index entries\n", verb, sc.SQ, sc.HQ, sc.SK, *dqk, *topk)
			return exitUsage
		}
		pc := oracle.SparsePrefillCase{SQ: sc.SQ, HQ: sc.HQ, SKV: sc.SK, TopK: *topk, DQK: *dqk, Sink: *sink, TopkLength: *varlen, Seed: sc.Seed}
		if bench {
			m, err := oracle.MeasureSparsePrefill(be, pc, 1, *reps)
			return printSparseBench(stdout, stderr, m, err, *asJSON, "sparse")
		}
		in, err := pc.Build()
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
			return exitUsage
		}
		out, mx, lse, err := mla.SparsePrefill(context.Background(), be, in.In, &in.Opts)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
			return exitFail
		}
		refOut, refMax, refLSE, err := oracle.SparsePrefill(in)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
			return exitFail
		}
		checkErr = oracle.CheckSparsePrefill(out, mx, lse, refOut, refMax, refLSE)
		res = checkResult("sparse_prefill_"+pc.Name(), be.Name(), out, lse, refOut, refLSE)
		res["max_logits_max_abs_diff"] = finiteMaxDiff(mx, refMax)
	}
	return printCheck(stdout, stderr, res, checkErr, *asJSON)
}

// wantsSparseFlag reports whether args set the boolean flag name (before
// "--"), so that the flag set can be built for it before parsing.
func wantsSparseFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		n, v, hasV := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && n == name {
			return !hasV || (v != "false" && v != "0" && v != "f" && v != "F" && v != "FALSE" && v != "False")
		}
	}
	return false
}

func checkResult(name, backend string, out, lse []float32, refOut, refLSE []float64) map[string]any {
	return map[string]any{
		"case": name, "backend": backend,
		"out_max_abs_diff": finiteMaxDiff(out, refOut), "out_calc_diff": testutil.CalcDiff(testutil.F64(out), refOut),
		"lse_max_abs_diff": finiteMaxDiff(lse, refLSE),
	}
}

func printCheck(stdout, stderr io.Writer, res map[string]any, checkErr error, asJSON bool) int {
	res["pass"] = checkErr == nil
	code := exitOK
	if checkErr != nil {
		res["error"] = checkErr.Error()
		code = exitFail
	}
	if asJSON {
		if c := writeJSON(stdout, stderr, "mla", res); c != exitOK {
			return c
		}
		return code
	}
	fmt.Fprintf(stdout, "case %s backend %s\n", res["case"], res["backend"])
	fmt.Fprintf(stdout, "out max_abs_diff %.3g calc_diff %.3g lse max_abs_diff %.3g\n", res["out_max_abs_diff"], res["out_calc_diff"], res["lse_max_abs_diff"])
	if checkErr != nil {
		fmt.Fprintln(stdout, "FAIL: "+checkErr.Error())
	} else {
		fmt.Fprintln(stdout, "pass")
	}
	return code
}

// printSparseBench prints a measurement as the dense bench does; label
// names the kernel ("sparse": GB/s count the gathered rows).
func printSparseBench(stdout, stderr io.Writer, m oracle.Measurement, err error, asJSON bool, label string) int {
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla bench: %v\n", err)
		return exitFail
	}
	if asJSON {
		return writeJSON(stdout, stderr, "mla", m)
	}
	fmt.Fprintf(stdout, "case %s backend %s kernels %s gomaxprocs %d\n", m.Case, m.Backend, m.Kernels, m.GOMAXPROCS)
	note := ""
	if label == "sparse" {
		note = " (gathered rows)"
	}
	fmt.Fprintf(stdout, "%s %.3f ms %.1f GFLOP/s %.2f GB/s%s\n", label, m.Seconds*1e3, m.GFLOPs, m.GBs, note)
	fmt.Fprintf(stdout, "anchors gemm %.1f GFLOP/s memcpy %.2f GB/s\n", m.GEMMGFLOPs, m.MemcpyGBs)
	fmt.Fprintf(stdout, "ratios x_gemm %.3f x_memcpy %.3f\n", m.RatioGEMM, m.RatioMemcpy)
	return exitOK
}

// runMLAFP8Check is `mla check|bench --fp8-cache`: the dense case with its
// cache in the FP8 storage kind (rows quantized with the V3.2 recipe), the
// oracle on the dequantized rows, the backend through mla.Decode.
func runMLAFP8Check(c *oracle.Case, backend string, bench bool, rounds int, stdout, stderr io.Writer, asJSON bool) int {
	verb := "check"
	if bench {
		verb = "bench"
	}
	if c.HKV != 1 || c.B <= 0 || c.SQ <= 0 || c.HQ <= 0 || c.SK < 0 || c.PageSize <= 0 {
		fmt.Fprintf(stderr, "fireflyer mla %s: --fp8-cache needs --hkv 1 and --b, --sq, --hq, --page > 0, --sk ≥ 0\n", verb)
		return exitUsage
	}
	if float64(c.B)*3*float64(c.SK+c.PageSize) > 1<<21 || float64(c.B*c.SQ)*float64(c.HQ)*mla.HeadDim > 1<<26 {
		fmt.Fprintf(stderr, "fireflyer mla %s: --b %d --sk %d --sq %d --hq %d: at most 2^21 cached tokens and 2^26 query elements\n", verb, c.B, c.SK, c.SQ, c.HQ)
		return exitUsage
	}
	be, err := mla.NewBackend(backend, mla.BackendOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla %s: --backend: %v\n", verb, err)
		return exitUsage
	}
	c.DType = tensor.E4M3T
	if bench {
		m, err := oracle.Measure(be, *c, 1, rounds)
		return printSparseBench(stdout, stderr, m, err, asJSON, "decode")
	}
	return checkDecode(c, be, stdout, stderr, asJSON)
}

// checkDecode is `mla check` of a dense case: it builds c (a failure is bad
// input, exit 2), runs be through mla.Decode and the float64 oracle on it (a
// failure is exit 1), and prints the comparison with printCheck (exit 1 when
// it fails upstream's tolerances).
func checkDecode(c *oracle.Case, be mla.Backend, stdout, stderr io.Writer, asJSON bool) int {
	in, err := c.Build()
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
		return exitUsage
	}
	out, lse, err := mla.Decode(context.Background(), be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
		return exitFail
	}
	refOut, refLSE, err := oracle.Decode(in)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla check: %v\n", err)
		return exitFail
	}
	return printCheck(stdout, stderr, checkResult(in.Case.Name(), be.Name(), out, lse, refOut, refLSE), oracle.Check(out, lse, refOut, refLSE), asJSON)
}
