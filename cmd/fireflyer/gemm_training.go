package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The training calls of fireflyer gemm: --layout nn|tn|tt runs
// gemm.FP8GemmNN/TN/TT on the problem's operands with the "T" side stored
// MN-major (an exact transpose, so the checks are those of the NT call);
// --kgrouped runs gemm.KGroupedFP8GemmTNContiguous (or, with --layout nt,
// the K-major form) over --groups groups of K = -k.

const maxGroups = 256

// checkTrainingFlags validates --layout, --kgrouped and --groups.
func checkTrainingFlags(layout string, kgrouped bool, groups, k int) error {
	switch layout {
	case "nt", "nn", "tn", "tt":
	default:
		return fmt.Errorf("--layout %q: want nt, nn, tn or tt", layout)
	}
	if !kgrouped {
		return nil
	}
	if layout != "tn" && layout != "nt" {
		return fmt.Errorf("--kgrouped --layout %s: the k-grouped GEMM has the tn and nt forms only", layout)
	}
	if groups < 1 || groups > maxGroups {
		return fmt.Errorf("--groups %d: want 1 … %d", groups, maxGroups)
	}
	if k%gemm.KGroupAlign != 0 {
		return fmt.Errorf("--kgrouped: -k %d must be a multiple of %d (each group's K)", k, gemm.KGroupAlign)
	}
	return nil
}

// layoutCall returns the call that computes D = A·Bᵀ of p in layout.
func layoutCall(ctx context.Context, be gemm.Backend, layout string, p *oracle.Problem) func(d *gemm.Out) error {
	mn := func(m *tensor.FP8Matrix) *tensor.FP8MNMatrix {
		t, err := tensor.ToMNMajor(m)
		if err != nil {
			panic(err) // the problem's operands are well formed
		}
		return t
	}
	switch layout {
	case "nn":
		b := mn(p.B)
		return func(d *gemm.Out) error { return gemm.FP8GemmNN(ctx, be, p.A, b, d) }
	case "tn":
		a, b := mn(p.A), mn(p.B)
		return func(d *gemm.Out) error { return gemm.FP8GemmTN(ctx, be, a, b, d) }
	case "tt":
		a := mn(p.A)
		return func(d *gemm.Out) error { return gemm.FP8GemmTT(ctx, be, a, p.B, d) }
	}
	return func(d *gemm.Out) error { return gemm.FP8GemmNT(ctx, be, p.A, p.B, d) }
}

// runKGrouped runs, checks and times the k-grouped GEMM of res's shape:
// groups groups of K = res.K, D [groups·M, N] float32 = C + A_gᵀ·B_g.
func runKGrouped(be gemm.Backend, res gemmResult, groups int, seed uint64, ue8m0, asJSON bool, stdout, stderr io.Writer) int {
	m, n, k := res.M, res.N, res.K
	if groups*m*n > 1<<26 || groups*k*(m+n) > 1<<29 {
		fmt.Fprintf(stderr, "fireflyer gemm: --kgrouped: groups·m·n must be at most 2^26 and groups·k·(m+n) at most 2^29 (got %d groups of %d×%d×%d)\n", groups, m, n, k)
		return exitUsage
	}
	res.KGrouped, res.Groups = true, groups
	res.GateDequantized = oracle.GateF32 // float32 D
	ks := make([]int, groups)
	for i := range ks {
		ks[i] = k
	}
	p := oracle.NewKGroupedProblem(seed, m, n, ks, tensor.QuantOptions{UE8M0: ue8m0})
	ctx := context.Background()
	d := oracle.NewOut(groups*m, n, 0, true, 0)
	c := tensor.Host[float32](p.C)
	for i := 0; i < res.RepeatsForTiming; i++ {
		d.C = c
		t := time.Now()
		var err error
		if res.Layout == "nt" {
			err = gemm.KGroupedFP8GemmNTContiguous(ctx, be, p.ANT, p.BNT, d, ks)
		} else {
			err = gemm.KGroupedFP8GemmTNContiguous(ctx, be, p.A, p.B, d, ks)
		}
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer gemm: %v\n", err)
			return exitFail
		}
		if e := time.Since(t).Seconds(); i == 0 || e < res.Seconds {
			res.Seconds = e
		}
	}
	res.GFLOPS = 2 * float64(groups) * float64(m) * float64(n) * float64(k) / res.Seconds / 1e9
	got := oracle.OutF64(d)
	dx, _ := tensor.DequantizeMN(p.A)
	dy, _ := tensor.DequantizeMN(p.B)
	res.CalcDiffUnquant = oracle.CalcDiff(got, oracle.KGroupedWant(p.X, p.Y, p.C, m, n, ks))
	res.CalcDiffDequant = oracle.CalcDiff(got, oracle.KGroupedWant(oracle.Transposed(dx, m, groups*k), oracle.Transposed(dy, n, groups*k), p.C, m, n, ks))
	res.Pass = res.CalcDiffUnquant < res.GateUnquantized && res.CalcDiffDequant < res.GateDequantized
	if asJSON {
		if c := writeJSON(stdout, stderr, "gemm", res); c != exitOK {
			return c
		}
	} else {
		kern := ""
		if res.Kernel != "" {
			kern = " (" + res.Kernel + ")"
		}
		fmt.Fprintf(stdout, "backend %s%s  k-grouped %s  G=%d M=%d N=%d K=%d per group  scales %s\n", res.Backend, kern, res.Layout, groups, m, n, k, res.Scales)
		fmt.Fprintf(stdout, "calc_diff vs unquantized float64: %.3g (gate %.0e)\n", res.CalcDiffUnquant, res.GateUnquantized)
		fmt.Fprintf(stdout, "calc_diff vs dequantized float64: %.3g (gate %.0e)\n", res.CalcDiffDequant, res.GateDequantized)
		fmt.Fprintf(stdout, "best of %d: %.3f ms, %.1f GFLOP/s\n", res.RepeatsForTiming, res.Seconds*1e3, res.GFLOPS)
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
