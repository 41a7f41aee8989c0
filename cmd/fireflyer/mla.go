package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	kernelset "github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func init() {
	register(command{name: "mla", summary: "MLA decode over a paged KV cache: plan, check, bench", run: runMLA})
}

const mlaUsage = `usage: fireflyer mla <verb> [flags] [args]

verbs:
  plan   print the split-KV schedule (get_mla_metadata) for cache lengths
  check  run one decode case against the float64 oracle with FlashMLA's tolerances
  bench  time one decode case against a same-FLOP GEMM and a same-bytes memcpy

check and bench take --sparse for DeepSeek-V3.2 sparse attention (with
--fp8-cache: sparse decode over the 656-byte FP8 cache; without: sparse
prefill); --fp8-cache alone is dense decode over the FP8 cache.

Run 'fireflyer mla <verb> -h' for the flags of one verb.
`

func runMLA(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mlaUsage)
		return exitUsage
	}
	switch args[0] {
	case "plan":
		return runMLAPlan(args[1:], stdin, stdout, stderr)
	case "check", "bench":
		if wantsSparse(args[1:]) {
			return runMLASparse(args[1:], stdout, stderr, args[0] == "bench")
		}
		return runMLACase(withoutSparseFlags(args[1:]), stdout, stderr, args[0] == "bench")
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stderr, mlaUsage) // like every flag set's -h; 'fireflyer help mla' sends it to stdout

		return exitOK
	}
	fmt.Fprintf(stderr, "fireflyer mla: unknown verb %q\n\n%s", args[0], mlaUsage)
	return exitUsage
}

// readSeqlens reads whitespace- or comma-separated lengths from r.
func readSeqlens(r io.Reader) ([]int32, error) {
	var out []int32
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		for _, f := range strings.Split(sc.Text(), ",") {
			if f == "" {
				continue
			}
			v, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("seqlens: %q is not an int32", f)
			}
			out = append(out, int32(v))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("seqlens: %w (a field longer than 64 MiB: is this a text file of lengths?)", err)
	}
	return out, nil
}

func runMLAPlan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("mla plan", "mla plan [flags] [SEQLENS_FILE|-]  (cache lengths, whitespace or comma separated)", stderr)
	parts := fs.Int("parts", 0, "number of parts (0: upstream's num_sm_parts for --sms, --sq, --hq, --hkv)")
	sms := fs.Int("sms", mla.H800SMs, "SM count for the default part count")
	sq := fs.Int("sq", 1, "query tokens per request (s_q)")
	hq := fs.Int("hq", 128, "query heads (h_q)")
	hkv := fs.Int("hkv", 1, "KV heads (h_kv)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *parts < 0 || *parts > maxMLAParts {
		fmt.Fprintf(stderr, "fireflyer mla plan: --parts %d: want 0 (the default) … %d\n", *parts, maxMLAParts)
		return exitUsage
	}
	if *sq < 1 || *hq < 1 || *hkv < 1 || *sms < 1 || *hq%*hkv != 0 {
		fmt.Fprintf(stderr, "fireflyer mla plan: need --sq, --hq, --hkv, --sms ≥ 1 and --hq a multiple of --hkv (got %d, %d, %d, %d)\n", *sq, *hq, *hkv, *sms)
		return exitUsage
	}
	in := stdin
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "fireflyer mla plan: at most one SEQLENS_FILE")
		return exitUsage
	}
	if fs.NArg() == 0 && isTerminal(stdin) {
		// Nothing is piped in: waiting on the terminal would look like a
		// hang.
		fmt.Fprintln(stderr, "fireflyer mla plan: no SEQLENS_FILE given and standard input is a terminal\nusage: fireflyer mla plan [flags] SEQLENS_FILE|-  (or pipe the lengths in: echo \"100 0 700\" | fireflyer mla plan)")
		return exitUsage
	}
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer mla plan: SEQLENS_FILE: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		in = f
	}
	seqlens, err := readSeqlens(in)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla plan: %v\n", err)
		return exitUsage
	}
	n := *parts
	if n == 0 {
		n = mla.NumSMParts(*sms, *sq, *hq, *hkv)
	}
	s, err := mla.Plan(seqlens, n)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla plan: %v\n", err)
		return exitUsage
	}
	if *asJSON {
		return writeJSON(stdout, stderr, "mla", map[string]any{
			"num_parts": s.NumParts, "parts": s.Parts, "num_splits": s.NumSplits, "pieces": s.Pieces(),
		})
	}
	fmt.Fprintf(stdout, "requests %d  parts %d  splits %d\n", len(seqlens), s.NumParts, s.TotalSplits())
	fmt.Fprintln(stdout, "part begin_req begin_seqlen end_req end_seqlen begin_split")
	for i, p := range s.Parts {
		fmt.Fprintf(stdout, "%d %d %d %d %d %d\n", i, p.BeginReq, p.BeginSeqlen, p.EndReq, p.EndSeqlen, p.BeginSplit)
	}
	fmt.Fprint(stdout, "num_splits")
	for _, v := range s.NumSplits {
		fmt.Fprintf(stdout, " %d", v)
	}
	fmt.Fprintln(stdout)
	return exitOK
}

// Bounds of the mla flags: --parts as mla.Plan takes it, --rounds so that a
// mistyped count cannot run for days (the default is 8).
const (
	maxMLAParts  = 1 << 20
	maxMLARounds = 1000
)

func caseFlags(fs *flag.FlagSet) (*oracle.Case, *string, *string) {
	c := &oracle.Case{}
	fs.IntVar(&c.B, "b", 4, "batch size")
	fs.IntVar(&c.SQ, "sq", 1, "query tokens per request (s_q)")
	fs.IntVar(&c.SK, "sk", 4096, "cache length per request (mean with --varlen)")
	fs.IntVar(&c.HQ, "hq", 128, "query heads")
	fs.IntVar(&c.HKV, "hkv", 1, "KV heads")
	fs.IntVar(&c.PageSize, "page", 64, "page size in tokens")
	fs.BoolVar(&c.Causal, "causal", true, "bottom-right causal mask (s_q > 1)")
	fs.BoolVar(&c.Varlen, "varlen", false, "lengths ~ max(N(sk, sk/2), 0)")
	fs.IntVar(&c.NumParts, "parts", 0, "schedule parts (0: the backend's default, 4·GOMAXPROCS SM-equivalents for cpu and ref)")
	fs.Uint64Var(&c.Seed, "seed", 1, "data seed")
	dtype := fs.String("dtype", "BF16", "cache dtype: BF16, F16 or F32")
	backend := fs.String("backend", "cpu", "backend: "+strings.Join(mla.BackendNames(), ", "))
	return c, dtype, backend
}

func runMLACase(args []string, stdout, stderr io.Writer, bench bool) int {
	verb := "check"
	if bench {
		verb = "bench"
	}
	fs := newFlagSet("mla "+verb, "mla "+verb+" [flags]", stderr)
	c, dtype, backend := caseFlags(fs)
	reps := fs.Int("rounds", 8, "bench: rounds alternating one timed run of the decode, the GEMM anchor and the memcpy anchor (each one's minimum is kept), 1 … 1000")
	kernels := fs.String("kernels", "", "force the cpu kernels (and the GEMM anchor) down to avx2, neon or go (default: the best this CPU has)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	// Set, these two switch to runMLASparse before this flag set parses
	// anything; they are here so that -h lists them.
	fs.Bool("sparse", false, "DeepSeek-V3.2 sparse attention (its own flags: fireflyer mla "+verb+" --sparse -h)")
	fs.Bool("fp8-cache", false, "the V3.2 656-byte FP8 KV cache (its flags: fireflyer mla "+verb+" --fp8-cache -h)")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	dt, err := tensor.ParseDType(*dtype)
	if err != nil || (dt != tensor.BF16T && dt != tensor.F16T && dt != tensor.F32) {
		fmt.Fprintf(stderr, "fireflyer mla %s: --dtype %q: want BF16, F16 or F32\n", verb, *dtype)
		return exitUsage
	}
	c.DType = dt
	switch *kernels {
	case "":
	case "avx512", "avx2", "neon", "go":
		if _, err := kernelset.ForName(*kernels); err != nil {
			fmt.Fprintf(stderr, "fireflyer mla %s: --kernels %s: this CPU or build has only %s\n", verb, *kernels, kernelset.Best())
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "fireflyer mla %s: --kernels %q: want avx512, avx2, neon or go\n", verb, *kernels)
		return exitUsage
	}
	be, err := mla.NewBackend(*backend, mla.BackendOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer mla %s: --backend: %v\n", verb, err)
		return exitUsage
	}
	if *kernels != "" && be.Name() == "cpu" {
		// The cpu backend (and with it the GEMM anchor) on the named set.
		if be, err = mla.NewCPU(mla.CPUOptions{Kernels: *kernels}); err != nil {
			fmt.Fprintf(stderr, "fireflyer mla %s: --kernels: %v\n", verb, err)
			return exitUsage
		}
	}
	if c.NumParts < 0 || c.NumParts > maxMLAParts {
		fmt.Fprintf(stderr, "fireflyer mla %s: --parts %d: want 0 (the backend's default) … %d\n", verb, c.NumParts, maxMLAParts)
		return exitUsage
	}
	if bench && (*reps < 1 || *reps > maxMLARounds) {
		fmt.Fprintf(stderr, "fireflyer mla bench: --rounds %d: want 1 … %d\n", *reps, maxMLARounds)
		return exitUsage
	}
	if c.B <= 0 || c.SQ <= 0 || c.HQ <= 0 || c.HKV <= 0 || c.SK < 0 || c.PageSize <= 0 || c.HQ%c.HKV != 0 {
		fmt.Fprintf(stderr, "fireflyer mla %s: need --b, --sq, --hq, --hkv, --page > 0, --sk ≥ 0 and --hq a multiple of --hkv\n", verb)
		return exitUsage
	}
	// Bound the memory before allocating (the cache, and the oracle's
	// float64 copy of one request's keys): --varlen lengths reach about 3·sk.
	sk := float64(c.SK)
	if c.Varlen {
		sk *= 3
	}
	const maxCache, maxQ = 1 << 28, 1 << 26
	cacheElems := float64(c.B) * (sk + float64(c.PageSize)) * float64(c.HKV) * mla.HeadDim
	qElems := float64(c.B) * float64(c.SQ) * float64(c.HQ) * mla.HeadDim
	if cacheElems > maxCache || qElems > maxQ {
		fmt.Fprintf(stderr, "fireflyer mla %s: --b %d --sk %d --hkv %d --sq %d --hq %d: at most 2^28 cache and 2^26 query elements of %d channels (got %.3g and %.3g)\n",
			verb, c.B, c.SK, c.HKV, c.SQ, c.HQ, mla.HeadDim, cacheElems, qElems)
		return exitUsage
	}
	if bench {
		m, err := oracle.Measure(be, *c, 1, *reps)
		return printSparseBench(stdout, stderr, m, err, *asJSON, "decode")
	}
	return checkDecode(c, be, stdout, stderr, *asJSON)
}

// finiteMaxDiff is max |got−want| over the positions where want is finite.
func finiteMaxDiff(got []float32, want []float64) float64 {
	m := 0.0
	for i, w := range want {
		if math.IsInf(w, 0) || math.IsNaN(w) {
			continue
		}
		m = max(m, math.Abs(float64(got[i])-w))
	}
	return m
}
