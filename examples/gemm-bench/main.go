// Command gemm-bench compares, in one run and on the same shapes, the gemm
// cpu backend (FP8 E4M3 with DeepGEMM block scales, BF16 output), OpenBLAS
// SGEMM on the same problem dequantized to float32 (through numpy from
// /usr/bin/python3, when importable), gonum's pure-Go Sgemm, and a
// register-only FMA loop that gives the machine's float32 peak.
//
// Every implementation is timed in interleaved rounds and the best round is
// kept, which is what survives a shared, noisy machine. GFLOP/s = 2·M·N·K/t.
// With -threads 1 everything runs on one thread and is timed in thread CPU
// time (CLOCK_THREAD_CPUTIME_ID; numpy's time.thread_time with
// OPENBLAS_NUM_THREADS=1; gonum, which starts goroutines, in process CPU
// time), which measures the kernels rather than the other tenants of a
// shared machine. With -fp4 it compares instead DeepGEMM's FP8×FP4 calls
// (fp8_fp4_gemm_nt and its m-grouped contiguous and masked forms, B in FP4
// with UE8M0 1×32 scales) with the dense FP8 call on the same FLOPs;
// -kernels forces a kernel set ("avx2" on an AVX-512 machine).
//
//	go run ./examples/gemm-bench -rounds 5
//	go run ./examples/gemm-bench -rounds 5 -threads 1
//	go run ./examples/gemm-bench -rounds 3 -threads 1 -kernels avx2 -mla
//
// -kernels forces the cpu backend's kernel set (and the FMA peak loop's:
// ymm for avx2), as on a CPU without AVX-512. A second OpenBLAS column then
// runs OpenBLAS with OPENBLAS_CORETYPE=Haswell, its AVX2 kernel, which is
// OpenBLAS's best on an AVX2-only CPU (-openblas-coretype names another or
// "none"); the first OpenBLAS column is OpenBLAS's own choice for this CPU.
// Each column is headed by the kernel OpenBLAS reports
// (openblas_get_corename). -mla adds MLA decode rows (mla's cpu backend on
// the same kernel set, h_q=128 and h_q=1) against OpenBLAS on the GEMM of
// equal FLOPs and a copy of equal bytes.
//
//	go run ./examples/gemm-bench -fp4 -threads 1 -rounds 3 -kernels avx2
//
// scripts/gemm-bench.sh runs it with OpenBLAS's environment cleaned up.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
)

// openblasScript serves timing requests: each stdin line "M N K" is
// answered with the seconds of one a @ b.T on float32 arrays of those
// shapes (arrays are cached per shape).
const openblasScript = `
import sys, time
import numpy as np
clock = time.thread_time if sys.argv[1:] == ["thread"] else time.perf_counter
cache = {}
core = "unknown"
try:
    import ctypes
    for path in sorted(set(l.split()[-1] for l in open("/proc/self/maps") if "openblas" in l)):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            break
except Exception:
    pass
print("ready", np.__version__, core, flush=True)
for line in sys.stdin:
    m, n, k = map(int, line.split())
    if (m, n, k) not in cache:
        cache[(m, n, k)] = (np.random.randn(m, k).astype(np.float32), np.random.randn(n, k).astype(np.float32))
        a, b = cache[(m, n, k)]
        a @ b.T
    a, b = cache[(m, n, k)]
    t = clock()
    c = a @ b.T
    print(clock() - t, flush=True)
`

type openblas struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startOpenBLAS starts the numpy helper; coretype, if not empty, is set as
// OPENBLAS_CORETYPE for it (forcing that OpenBLAS kernel). It returns the
// helper and "numpy-version corename".
func startOpenBLAS(python string, oneThread bool, coretype string) (*openblas, string, error) {
	args := []string{"-c", openblasScript}
	cmd := exec.Command(python, args...)
	cmd.Env = os.Environ()
	if oneThread {
		cmd.Args = append(cmd.Args, "thread")
		cmd.Env = append(cmd.Env, "OPENBLAS_NUM_THREADS=1")
	}
	if coretype != "" {
		cmd.Env = append(cmd.Env, "OPENBLAS_CORETYPE="+coretype)
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	o := &openblas{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !o.out.Scan() || !strings.HasPrefix(o.out.Text(), "ready") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("numpy did not start (is python3-numpy installed?)")
	}
	return o, strings.TrimPrefix(o.out.Text(), "ready "), nil
}

func (o *openblas) time(s oracle.Shape) (float64, error) {
	if _, err := fmt.Fprintf(o.in, "%d %d %d\n", s.M, s.N, s.K); err != nil {
		return 0, err
	}
	if !o.out.Scan() {
		return 0, fmt.Errorf("numpy helper exited")
	}
	return strconv.ParseFloat(o.out.Text(), 64)
}

func (o *openblas) close() {
	_ = o.in.Close()
	_ = o.cmd.Wait()
}

func parseShapes(spec string) ([]oracle.Shape, error) {
	var out []oracle.Shape
	for _, f := range strings.Split(spec, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v := strings.Split(f, ",")
		if len(v) != 3 {
			return nil, fmt.Errorf("-shapes: %q is not M,N,K", f)
		}
		var d [3]int
		for i := range v {
			x, err := strconv.Atoi(strings.TrimSpace(v[i]))
			if err != nil || x <= 0 {
				return nil, fmt.Errorf("-shapes: bad dimension %q", v[i])
			}
			d[i] = x
		}
		out = append(out, oracle.Shape{M: d[0], N: d[1], K: d[2]})
	}
	return out, nil
}

func best(ts []float64) float64 {
	b := 0.0
	for i, t := range ts {
		if i == 0 || t < b {
			b = t
		}
	}
	return b
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }

// clock is the timer of a run: wall time, or the calling thread's CPU time.
type clock struct{ thread bool }

func (c clock) now() float64 {
	if !c.thread {
		return float64(time.Now().UnixNano()) * 1e-9
	}
	return threadCPU()
}

func main() {
	shapes := flag.String("shapes", "64,2112,7168;128,2112,7168;1024,2112,7168;64,576,7168;128,576,7168;1024,576,7168;"+
		"64,4096,1536;128,4096,1536;1024,4096,1536;64,4096,512;128,4096,512;1024,4096,512;"+
		"64,7168,2048;128,7168,2048;1024,7168,2048", "semicolon-separated M,N,K shapes")
	rounds := flag.Int("rounds", 5, "interleaved timing rounds (best kept)")
	gonumRounds := flag.Int("gonum-rounds", 1, "timing rounds for gonum Sgemm (slow)")
	python := flag.String("python", "/usr/bin/python3", "python with numpy for the OpenBLAS column (\"\" to skip)")
	grouped := flag.Bool("grouped", true, "also compare grouped contiguous and masked calls with dense at equal FLOPs")
	threads := flag.Int("threads", 0, "threads: 0 = GOMAXPROCS (wall time); 1 = one thread, timed in thread CPU time")
	kernelSet := flag.String("kernels", "", "cpu backend kernel set: avx512, avx2, go, or \"\" for the best this CPU runs")
	coretype := flag.String("openblas-coretype", "auto", "also time OpenBLAS with this OPENBLAS_CORETYPE (a second column); "+
		"\"auto\": Haswell (OpenBLAS's AVX2 kernel) when -kernels is avx2, else none; \"none\": no second column")
	mlaRows := flag.Bool("mla", false, "also time MLA decode (h_q=128 and 1) against OpenBLAS on the GEMM of equal FLOPs and a copy of equal bytes")
	indexer := flag.Bool("indexer", false, "compare the V3.2 indexer decode step (PagedMQALogits, TopKIndices) instead of the GEMMs")
	indexerCtx := flag.Int("indexer-ctx", 65536, "with -indexer: keys per request")
	training := flag.Bool("training", false, "instead: compare the training calls (NN/TN/TT layouts, k-grouped, m-grouped BF16) with dense NT at equal FLOPs on -shapes")
	kgGroups := flag.Int("kgroups", 8, "with -training: groups of the k-grouped calls (0: skip them)")
	kgK := flag.Int("kgk", 4096, "with -training: K per group of the k-grouped calls (a multiple of 128)")
	sparse := flag.Bool("sparse", false, "instead: compare DeepSeek-V3.2 sparse prefill (mla.SparsePrefill, h_q=128, d_qk=576) with OpenBLAS on equal FLOPs")
	sparseSQ := flag.Int("sparse-sq", 4096, "with -sparse: query tokens s_q")
	sparseSKV := flag.Int("sparse-skv", 8192, "with -sparse: KV rows s_kv")
	sparseTopK := flag.Int("sparse-topk", 2048, "with -sparse: indices per query token")
	fp4 := flag.Bool("fp4", false, "compare only the FP8×FP4 calls with the dense FP8 call at equal FLOPs")
	fp4Shapes := flag.String("fp4-shapes", "4,4096,4096,7168;8,4096,7168,2048;4,4096,4096,4096", "with -fp4: semicolon-separated G,M,N,K cases")
	flag.Parse()
	oneThread := *threads == 1
	clk := clock{thread: oneThread}
	if oneThread && !haveCPUClocks {
		fmt.Fprintln(os.Stderr, "gemm-bench: -threads 1 needs thread CPU clocks, which this OS does not offer")
		os.Exit(2)
	}
	if oneThread {
		runtime.LockOSThread()
		// mla's decode runs on GOMAXPROCS goroutines: one, the calling
		// one, so that thread CPU time sees all of its work.
		runtime.GOMAXPROCS(1)
	}
	list, err := parseShapes(*shapes)
	if err != nil || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "gemm-bench:", err)
		os.Exit(2)
	}
	nthreads := runtime.GOMAXPROCS(0)
	if oneThread {
		nthreads = 1
	}
	be, err := cpu.NewBackend(cpu.Options{Workers: nthreads, Kernels: *kernelSet})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gemm-bench: -kernels:", err)
		os.Exit(2)
	}
	if *fp4 {
		cases, err := parseFP4Cases(*fp4Shapes)
		if err != nil || *rounds < 1 {
			fmt.Fprintln(os.Stderr, "gemm-bench:", err)
			os.Exit(2)
		}
		fmt.Printf("kernel %s, %d thread(s), %s, %d rounds (best kept)\n\n", be.Kernel(), nthreads, map[bool]string{true: "thread CPU time", false: "wall time"}[oneThread], *rounds)
		fp4Bench(be, *rounds, clk, cases)
		return
	}
	switch *coretype {
	case "auto":
		*coretype = ""
		if be.Kernel() == "avx2" {
			*coretype = "Haswell"
		}
	case "none":
		*coretype = ""
	}
	// ob runs OpenBLAS's own choice of kernel (the environment's
	// OPENBLAS_CORETYPE, which scripts/gemm-bench.sh unsets); obForced, if
	// -openblas-coretype asks for it, the forced kernel.
	var ob, obForced *openblas
	obName, forcedName := "OpenBLAS", ""
	if *python != "" {
		var ver string
		ob, ver, err = startOpenBLAS(*python, oneThread, "")
		if err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench: OpenBLAS column skipped:", err)
			ob = nil
		} else {
			defer ob.close()
			fmt.Fprintf(os.Stderr, "gemm-bench: numpy %s (numpy version, OpenBLAS kernel)\n", ver)
			if f := strings.Fields(ver); len(f) == 2 {
				obName = "OpenBLAS " + f[1]
			}
		}
		if ob != nil && *coretype != "" {
			obForced, ver, err = startOpenBLAS(*python, oneThread, *coretype)
			if err != nil {
				fmt.Fprintln(os.Stderr, "gemm-bench: forced OpenBLAS column skipped:", err)
				obForced = nil
			} else {
				defer obForced.close()
				forcedName = "OpenBLAS " + *coretype
				if f := strings.Fields(ver); len(f) == 2 {
					forcedName = "OpenBLAS " + f[1]
				}
				fmt.Fprintf(os.Stderr, "gemm-bench: OPENBLAS_CORETYPE=%s for the second OpenBLAS column: kernel %s\n", *coretype, ver)
			}
		}
	}
	ctx := context.Background()
	timing := "wall time"
	if oneThread {
		timing = "thread CPU time"
	}
	fmt.Printf("kernel %s, %d thread(s), %s, %d rounds (best kept)\n\n", be.Kernel(), nthreads, timing, *rounds)
	if *indexer {
		indexerBench(be, ob, clk, *rounds, 4, 64, 128, *indexerCtx, 2048)
		return
	}
	if *sparse {
		sparsePrefillBench(*kernelSet, ob, clk, *rounds, *sparseSQ, 128, *sparseSKV, *sparseTopK)
		return
	}
	if *training {
		if err := trainingBench(be, list, *kgGroups, *kgK, *rounds, clk); err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench:", err)
			os.Exit(1)
		}
		return
	}

	// Peak: the FMA loop on every core, best of rounds.
	var peaks []float64
	peakOnce := func() {
		const iters = 2000000
		if oneThread {
			t := clk.now()
			be.PeakLoop(iters)
			peaks = append(peaks, be.PeakLoop(1)*iters/(clk.now()-t)/1e9)
			return
		}
		w := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		t := time.Now()
		for i := 0; i < w; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				be.PeakLoop(iters)
			}()
		}
		wg.Wait()
		el := since(t)
		peaks = append(peaks, float64(w)*be.PeakLoop(1)*iters/el/1e9)
	}

	type row struct {
		s                 oracle.Shape
		cpuT, obT, gonumT []float64
		obForcedT         []float64
		problem           *oracle.Problem
		d                 *gemm.Out
		ga, gb, gc        blas32.General
	}
	rows := make([]*row, len(list))
	for i, s := range list {
		p := oracle.NewProblem(uint64(i+1), s, tensor.QuantOptions{})
		r := &row{s: s, problem: p, d: oracle.NewOut(s.M, s.N, 0, false, 0)}
		r.ga = blas32.General{Rows: s.M, Cols: s.K, Stride: s.K, Data: p.DA}
		r.gb = blas32.General{Rows: s.N, Cols: s.K, Stride: s.K, Data: p.DB}
		r.gc = blas32.General{Rows: s.M, Cols: s.N, Stride: s.N, Data: make([]float32, s.M*s.N)}
		_ = gemm.FP8GemmNT(ctx, be, p.A, p.B, r.d) // warm up
		rows[i] = r
	}
	for round := 0; round < *rounds; round++ {
		peakOnce()
		for _, r := range rows {
			t := clk.now()
			if err := gemm.FP8GemmNT(ctx, be, r.problem.A, r.problem.B, r.d); err != nil {
				fmt.Fprintln(os.Stderr, "gemm-bench:", err)
				os.Exit(1)
			}
			r.cpuT = append(r.cpuT, clk.now()-t)
			if ob != nil {
				ts, err := ob.time(r.s)
				if err != nil {
					fmt.Fprintln(os.Stderr, "gemm-bench: OpenBLAS:", err)
					os.Exit(1)
				}
				r.obT = append(r.obT, ts)
			}
			if obForced != nil {
				ts, err := obForced.time(r.s)
				if err != nil {
					fmt.Fprintln(os.Stderr, "gemm-bench: OpenBLAS:", err)
					os.Exit(1)
				}
				r.obForcedT = append(r.obForcedT, ts)
			}
			if round < *gonumRounds {
				if oneThread {
					c0 := processCPU()
					blas32.Gemm(blas.NoTrans, blas.Trans, 1, r.ga, r.gb, 0, r.gc)
					r.gonumT = append(r.gonumT, processCPU()-c0)
				} else {
					t := time.Now()
					blas32.Gemm(blas.NoTrans, blas.Trans, 1, r.ga, r.gb, 0, r.gc)
					r.gonumT = append(r.gonumT, since(t))
				}
			}
		}
	}
	pk := 0.0
	for _, p := range peaks {
		pk = max(pk, p)
	}
	fmt.Printf("FMA peak (register-only loop, %d thread(s)): %.0f GFLOP/s\n\n", nthreads, pk)
	if obForced == nil {
		fmt.Printf("| M | N | K | cpu FP8 GFLOP/s | %s f32 GFLOP/s | gonum f32 GFLOP/s | cpu/OpenBLAS | cpu/gonum | cpu %% of peak |\n", obName)
		fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	} else {
		fmt.Printf("| M | N | K | cpu FP8 GFLOP/s | %s f32 GFLOP/s | cpu/%s | %s f32 GFLOP/s | cpu/%s | gonum f32 GFLOP/s | cpu/gonum | cpu %% of peak |\n",
			forcedName, forcedName, obName, obName)
		fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	}
	gf := func(s oracle.Shape, t float64) float64 {
		return 2 * float64(s.M) * float64(s.N) * float64(s.K) / t / 1e9
	}
	// rate returns the GFLOP/s of the best of ts and cpu's ratio to it, or
	// dashes without timings.
	rate := func(s oracle.Shape, ts []float64, c float64, f string) (string, string) {
		if len(ts) == 0 {
			return "–", "–"
		}
		o := gf(s, best(ts))
		return fmt.Sprintf("%.1f", o), fmt.Sprintf(f, c/o)
	}
	for _, r := range rows {
		c := gf(r.s, best(r.cpuT))
		obs, ratio := rate(r.s, r.obT, c, "%.2f×")
		gs, gratio := rate(r.s, r.gonumT, c, "%.1f×")
		if obForced == nil {
			fmt.Printf("| %d | %d | %d | %.1f | %s | %s | %s | %s | %.0f%% |\n", r.s.M, r.s.N, r.s.K, c, obs, gs, ratio, gratio, 100*c/pk)
			continue
		}
		fs, fratio := rate(r.s, r.obForcedT, c, "%.2f×")
		fmt.Printf("| %d | %d | %d | %.1f | %s | %s | %s | %s | %s | %s | %.0f%% |\n", r.s.M, r.s.N, r.s.K, c, fs, fratio, obs, ratio, gs, gratio, 100*c/pk)
	}
	if *grouped {
		groupedBench(be, *rounds, clk)
	}
	if *mlaRows {
		var obs []*openblas
		var names []string
		if obForced != nil {
			obs, names = append(obs, obForced), append(names, forcedName)
		}
		if ob != nil {
			obs, names = append(obs, ob), append(names, obName)
		}
		mlaBench(be.Kernel(), *rounds, clk, oneThread, obs, names)
	}
}

// groupedBench compares the grouped calls with a dense call of equal FLOPs.
func groupedBench(be *cpu.Backend, rounds int, clk clock) {
	ctx := context.Background()
	fmt.Println()
	fmt.Println("| call | shape | GFLOP/s | vs dense |")
	fmt.Println("|---|---|---:|---:|")
	for _, c := range []struct{ g, m, n, k int }{{4, 1024, 4096, 2048}, {8, 1024, 7168, 2048}, {2, 256, 2112, 7168}} {
		dense := oracle.NewProblem(7, oracle.Shape{M: c.m, N: c.n, K: c.k}, tensor.QuantOptions{})
		bs := make([]*tensor.FP8Matrix, c.g)
		for i := range bs {
			bs[i] = dense.B
		}
		bg, _ := tensor.Stack(bs...)
		idx := make([]int32, c.m)
		for i := range idx {
			idx[i] = int32(i / (c.m / c.g))
		}
		masked := make([]int32, c.g)
		for i := range masked {
			masked[i] = int32(c.m / c.g)
		}
		am := *dense.A
		am.Groups, am.Rows = c.g, c.m/c.g
		d := oracle.NewOut(c.m, c.n, 0, false, 0)
		calls := []func() error{
			func() error { return gemm.FP8GemmNT(ctx, be, dense.A, dense.B, d) },
			func() error { return gemm.GroupedContiguousNT(ctx, be, dense.A, bg, d, idx) },
			func() error { return gemm.GroupedMaskedNT(ctx, be, &am, bg, d, masked, c.m/c.g) },
		}
		ts := make([][]float64, len(calls))
		for r := 0; r < rounds; r++ {
			for i, f := range calls {
				t := clk.now()
				if err := f(); err != nil {
					fmt.Fprintln(os.Stderr, "gemm-bench:", err)
					os.Exit(1)
				}
				ts[i] = append(ts[i], clk.now()-t)
			}
		}
		flops := 2 * float64(c.m) * float64(c.n) * float64(c.k)
		names := []string{"dense", "contiguous", "masked"}
		shapes := []string{fmt.Sprintf("M=%d N=%d K=%d", c.m, c.n, c.k),
			fmt.Sprintf("G=%d M/group=%d N=%d K=%d", c.g, c.m/c.g, c.n, c.k),
			fmt.Sprintf("G=%d maskedM=%d N=%d K=%d", c.g, c.m/c.g, c.n, c.k)}
		for i := range calls {
			fmt.Printf("| %s | %s | %.1f | %.2f× |\n", names[i], shapes[i], flops/best(ts[i])/1e9, best(ts[0])/best(ts[i]))
		}
	}
}
