package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// benchCall is one timed call and the dense NT call (same FLOPs, same
// output dtype) it is compared with.
type benchCall struct {
	name, shape string
	flops       float64
	run, anchor func() error
}

// trainingBench compares the training calls (gemm.TrainingBackend) with
// the dense NT call of equal FLOPs in the same run: the NN/TN/TT layouts of
// the FP8 and BF16 GEMMs on the given shapes, the k-grouped weight
// gradients over kgGroups groups of kgK (M, N from the first shape) against
// a dense NT with K = kgGroups·kgK, and the m-grouped BF16 calls. Each call
// and its anchor are timed alternately, rounds times, best kept.
func trainingBench(be *cpu.Backend, shapes []oracle.Shape, kgGroups, kgK, rounds int, clk clock) error {
	ctx := context.Background()
	var calls []benchCall
	mn := func(m *tensor.FP8Matrix) *tensor.FP8MNMatrix {
		t, err := tensor.ToMNMajor(m)
		if err != nil {
			panic(err)
		}
		return t
	}
	bf := func(rows, k int, seed uint64) *gemm.BF16Matrix {
		x := oracle.Randn(rngFor(seed), rows*k)
		d := make([]tensor.BF16, rows*k)
		tensor.EncodeBF16(d, x)
		return &gemm.BF16Matrix{Rows: rows, K: k, Data: tensor.HostOf(d)}
	}
	bfMN := func(m *gemm.BF16Matrix) *gemm.BF16MNMatrix {
		h, _ := tensor.HostSlice(m.Data)
		return &gemm.BF16MNMatrix{MN: m.Rows, K: m.K, Data: tensor.HostOf(oracle.Transposed(h, m.Rows, m.K))}
	}
	for i, s := range shapes {
		p := oracle.NewProblem(uint64(40+i), s, tensor.QuantOptions{})
		d := oracle.NewOut(s.M, s.N, 0, false, 0)
		am, bm := mn(p.A), mn(p.B)
		flops := 2 * float64(s.M) * float64(s.N) * float64(s.K)
		nt := func() error { return gemm.FP8GemmNT(ctx, be, p.A, p.B, d) }
		sh := fmt.Sprintf("M=%d N=%d K=%d", s.M, s.N, s.K)
		calls = append(calls,
			benchCall{"fp8_gemm_nn", sh, flops, func() error { return gemm.FP8GemmNN(ctx, be, p.A, bm, d) }, nt},
			benchCall{"fp8_gemm_tn", sh, flops, func() error { return gemm.FP8GemmTN(ctx, be, am, bm, d) }, nt},
			benchCall{"fp8_gemm_tt", sh, flops, func() error { return gemm.FP8GemmTT(ctx, be, am, p.B, d) }, nt})
		if i > 0 {
			continue // BF16 on the first shape only
		}
		a16, b16 := bf(s.M, s.K, 50), bf(s.N, s.K, 51)
		a16mn, b16mn := bfMN(a16), bfMN(b16)
		nt16 := func() error { return gemm.BF16GemmNT(ctx, be, a16, b16, d) }
		calls = append(calls,
			benchCall{"bf16_gemm_nn", sh, flops, func() error { return gemm.BF16GemmNN(ctx, be, a16, b16mn, d) }, nt16},
			benchCall{"bf16_gemm_tn", sh, flops, func() error { return gemm.BF16GemmTN(ctx, be, a16mn, b16mn, d) }, nt16},
			benchCall{"bf16_gemm_tt", sh, flops, func() error { return gemm.BF16GemmTT(ctx, be, a16mn, b16, d) }, nt16})
		// m-grouped BF16: 4 groups of M/4 rows against 4 experts (when M/4
		// is a multiple of 128, as the contiguous layout needs).
		const g = 4
		if s.M%(g*gemm.MAlignmentForContiguous()) != 0 {
			continue
		}
		bg := bf(g*s.N, s.K, 52)
		idx := make([]int32, s.M)
		for r := range idx {
			idx[r] = int32(r * g / s.M)
		}
		masked := make([]int32, g)
		for j := range masked {
			masked[j] = int32(s.M / g)
		}
		calls = append(calls,
			benchCall{"m_grouped_bf16_gemm_nt_contiguous", fmt.Sprintf("G=%d M/group=%d N=%d K=%d", g, s.M/g, s.N, s.K), flops,
				func() error { return gemm.MGroupedBF16GemmNTContiguous(ctx, be, a16, bg, d, idx) }, nt16},
			benchCall{"m_grouped_bf16_gemm_nt_masked", fmt.Sprintf("G=%d maskedM=%d N=%d K=%d", g, s.M/g, s.N, s.K), flops,
				func() error { return gemm.MGroupedBF16GemmNTMasked(ctx, be, a16, bg, d, masked, s.M/g) }, nt16})
	}
	if kgGroups > 0 && len(shapes) > 0 {
		m, n := shapes[0].M, shapes[0].N
		ks := make([]int, kgGroups)
		for i := range ks {
			ks[i] = kgK
		}
		kp := oracle.NewKGroupedProblem(60, m, n, ks, tensor.QuantOptions{})
		sumK := kgGroups * kgK
		// The anchor: one dense NT over all of ΣK with the same recipe
		// (both operands per token along K, float32 D plus C).
		da, err := tensor.ToKMajor(kp.A)
		if err != nil {
			return err
		}
		db, err := tensor.ToKMajor(kp.B)
		if err != nil {
			return err
		}
		dd := oracle.NewOut(m, n, 0, true, 0)
		dd.C = tensor.HostOf(kp.C[:m*n])
		dk := oracle.NewOut(kgGroups*m, n, 0, true, 0)
		dk.C = tensor.HostOf(kp.C)
		a16, b16 := bf(m, sumK, 62), bf(n, sumK, 63)
		a16mn, b16mn := bfMN(a16), bfMN(b16)
		flops := 2 * float64(m) * float64(n) * float64(sumK)
		sh := fmt.Sprintf("G=%d M=%d N=%d K=%d per group", kgGroups, m, n, kgK)
		nt := func() error { return gemm.FP8GemmNT(ctx, be, da, db, dd) }
		nt16 := func() error { return gemm.BF16GemmNT(ctx, be, a16, b16, dd) }
		calls = append(calls,
			benchCall{"k_grouped_fp8_gemm_tn_contiguous", sh, flops, func() error { return gemm.KGroupedFP8GemmTNContiguous(ctx, be, kp.A, kp.B, dk, ks) }, nt},
			benchCall{"k_grouped_fp8_gemm_nt_contiguous", sh, flops, func() error { return gemm.KGroupedFP8GemmNTContiguous(ctx, be, kp.ANT, kp.BNT, dk, ks) }, nt},
			benchCall{"k_grouped_bf16_gemm_tn_contiguous", sh, flops, func() error { return gemm.KGroupedBF16GemmTNContiguous(ctx, be, a16mn, b16mn, dk, ks) }, nt16})
	}
	fmt.Println("| call | shape | GFLOP/s | dense NT GFLOP/s (same FLOPs) | vs dense NT |")
	fmt.Println("|---|---|---:|---:|---:|")
	worst := 0.0
	for _, c := range calls {
		var tc, ta []float64
		for r := 0; r < rounds; r++ {
			for _, f := range []func() error{c.run, c.anchor} {
				t := clk.now()
				if err := f(); err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				if e := clk.now() - t; len(tc) == len(ta) {
					tc = append(tc, e)
				} else {
					ta = append(ta, e)
				}
			}
		}
		ratio := best(ta) / best(tc)
		if worst == 0 || ratio < worst {
			worst = ratio
		}
		fmt.Printf("| %s | %s | %.1f | %.1f | %.2f× |\n", c.name, c.shape, c.flops/best(tc)/1e9, c.flops/best(ta)/1e9, ratio)
	}
	fmt.Fprintf(os.Stderr, "gemm-bench: worst ratio %.2f× (%s)\n", worst, strings.TrimSpace(be.Kernel()))
	return nil
}

func rngFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }
