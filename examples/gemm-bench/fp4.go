package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// fp4Case is one FP8×FP4 comparison: a dense shape M×N×K, run as the dense
// FP8 NT call (the anchor), the dense FP8×FP4 call, and the contiguous and
// masked FP8×FP4 calls over G groups of M/G rows (same FLOPs).
type fp4Case struct{ g, m, n, k int }

// parseFP4Cases parses -fp4-shapes, "G,M,N,K;...": positive values, K
// even and G dividing M. The default holds M = 4096 with N, K from
// DeepGEMM's normal and m-grouped grids (tests/generators.py).
func parseFP4Cases(spec string) ([]fp4Case, error) {
	var out []fp4Case
	for _, f := range strings.Split(spec, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v := strings.Split(f, ",")
		if len(v) != 4 {
			return nil, fmt.Errorf("-fp4-shapes: %q is not G,M,N,K", f)
		}
		var d [4]int
		for i := range v {
			x, err := strconv.Atoi(strings.TrimSpace(v[i]))
			if err != nil || x <= 0 {
				return nil, fmt.Errorf("-fp4-shapes: bad value %q", v[i])
			}
			d[i] = x
		}
		if d[1]%d[0] != 0 || d[3]%2 != 0 {
			return nil, fmt.Errorf("-fp4-shapes: %q: G must divide M and K must be even", f)
		}
		out = append(out, fp4Case{d[0], d[1], d[2], d[3]})
	}
	return out, nil
}

// fp4Bench times, in interleaved rounds (best kept), the dense FP8 NT call
// and the FP8×FP4 calls (B FP4 with UE8M0 1×32 scales, DeepGEMM's FP4
// recipe; A per-token FP8 with UE8M0 scales) on the same FLOPs, and prints
// their GFLOP/s and the ratio to the dense FP8 call.
func fp4Bench(be *cpu.Backend, rounds int, clk clock, cases []fp4Case) {
	ctx := context.Background()
	opt := tensor.QuantOptions{UE8M0: true}
	fmt.Println("| call | shape | GFLOP/s | vs dense FP8 |")
	fmt.Println("|---|---|---:|---:|")
	for ci, c := range cases {
		p8 := oracle.NewProblem(uint64(40+ci), oracle.Shape{M: c.m, N: c.n, K: c.k}, opt)
		b4, err := tensor.QuantizePerTokenFP4(p8.Y, c.n, c.k, tensor.FP4ScaleK32, opt)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench:", err)
			os.Exit(1)
		}
		// Grouped: G copies of B (each group's weights), A split in G
		// segments of M/G rows.
		bs := make([]*tensor.FP4Matrix, c.g)
		for i := range bs {
			bs[i] = b4
		}
		bg, err := tensor.StackFP4(bs...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gemm-bench:", err)
			os.Exit(1)
		}
		idx := make([]int32, c.m)
		for i := range idx {
			idx[i] = int32(i / (c.m / c.g))
		}
		masked := make([]int32, c.g)
		for i := range masked {
			masked[i] = int32(c.m / c.g)
		}
		am := *p8.A
		am.Groups, am.Rows = c.g, c.m/c.g
		d := oracle.NewOut(c.m, c.n, 0, false, 0)
		calls := []func() error{
			func() error { return gemm.FP8GemmNT(ctx, be, p8.A, p8.B, d) },
			func() error { return gemm.FP8FP4GemmNT(ctx, be, p8.A, b4, d) },
			func() error { return gemm.FP8FP4GroupedContiguousNT(ctx, be, p8.A, bg, d, idx) },
			func() error { return gemm.FP8FP4GroupedMaskedNT(ctx, be, &am, bg, d, masked, c.m/c.g) },
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
		names := []string{"fp8_gemm_nt (anchor)", "fp8_fp4_gemm_nt", "m_grouped_fp8_fp4_gemm_nt_contiguous", "m_grouped_fp8_fp4_gemm_nt_masked"}
		shapes := []string{fmt.Sprintf("M=%d N=%d K=%d", c.m, c.n, c.k), fmt.Sprintf("M=%d N=%d K=%d", c.m, c.n, c.k),
			fmt.Sprintf("G=%d M/group=%d N=%d K=%d", c.g, c.m/c.g, c.n, c.k),
			fmt.Sprintf("G=%d maskedM=%d N=%d K=%d", c.g, c.m/c.g, c.n, c.k)}
		for i := range calls {
			fmt.Printf("| %s | %s | %.1f | %.2f× |\n", names[i], shapes[i], flops/best(ts[i])/1e9, best(ts[0])/best(ts[i]))
		}
	}
}
