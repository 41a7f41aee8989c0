package cpu_test

import (
	"context"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// TestLargeK covers K above the pre-packing limit with several column
// tiles per row chunk, where each tile decodes and packs A itself for
// every K block (the -short conformance grid stays below that K). Two row
// chunks, a K tail of 24 and an N tail of 4 columns are included; the
// result must match the float64 product of the dequantized operands.
func TestLargeK(t *testing.T) {
	sh := oracle.Shape{M: 300, N: 400, K: 2200}
	p := oracle.NewProblem(77, sh, tensor.QuantOptions{})
	want := oracle.MatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K)
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			d := oracle.NewOut(sh.M, sh.N, 0, true, 0)
			b := cpu.New(cpu.Options{Workers: workers})
			if err := gemm.FP8GemmNT(context.Background(), b, p.A, p.B, d); err != nil {
				t.Fatal(err)
			}
			if diff := testutil.CalcDiff(oracle.OutF64(d), want); !(diff < 1e-6) {
				t.Errorf("calc_diff vs dequantized float64 product = %.3g, want < 1e-6", diff)
			}
		})
	}
}

// TestLargeTiles covers the larger tiles the AVX2 set takes on a core with
// a 2 MiB L2 (384 rows × 480 columns) at every kernel set: several row
// chunks and column tiles with ragged edges, pre-packed A (K ≤ 2048) and A
// packed per tile (K above), against the float64 product of the
// dequantized operands.
func TestLargeTiles(t *testing.T) {
	for _, sh := range []oracle.Shape{{M: 800, N: 1000, K: 640}, {M: 400, N: 970, K: 2100}} {
		p := oracle.NewProblem(78, sh, tensor.QuantOptions{})
		want := oracle.MatMulNT64(p.DA, p.DB, sh.M, sh.N, sh.K)
		for _, k := range kernelSets() {
			for _, workers := range []int{1, 2} {
				t.Run(fmt.Sprintf("%v/%s/workers=%d", sh, k, workers), func(t *testing.T) {
					d := oracle.NewOut(sh.M, sh.N, 0, true, 0)
					b := cpu.New(cpu.Options{Workers: workers, Kernels: k})
					if err := gemm.FP8GemmNT(context.Background(), b, p.A, p.B, d); err != nil {
						t.Fatal(err)
					}
					if diff := testutil.CalcDiff(oracle.OutF64(d), want); !(diff < 1e-6) {
						t.Errorf("calc_diff vs dequantized float64 product = %.3g, want < 1e-6", diff)
					}
				})
			}
		}
	}
}
