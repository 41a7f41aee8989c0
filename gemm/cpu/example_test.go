package cpu_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// Multiply per-token-quantized activations by block-quantized weights with
// the fast backend, and compare with the reference backend.
func Example() {
	const m, n, k = 64, 256, 576
	r := testutil.RNG(1)
	a, _ := gemm.QuantizePerToken(testutil.Normal(r, m*k, 0, 1), m, k, gemm.QuantOptions{})
	b, _ := gemm.QuantizePerBlock(testutil.Normal(r, n*k, 0, 1), n, k, gemm.QuantOptions{})
	fast := &gemm.Out{Rows: m, Cols: n, F32: make([]float32, m*n)}
	slow := &gemm.Out{Rows: m, Cols: n, F32: make([]float32, m*n)}
	if err := cpu.New().GemmNT(context.Background(), a, b, fast); err != nil {
		panic(err)
	}
	if err := ref.New().GemmNT(context.Background(), a, b, slow); err != nil {
		panic(err)
	}
	d := testutil.CalcDiff(testutil.F64(fast.F32), testutil.F64(slow.F32))
	fmt.Println("cpu agrees with ref (calc_diff < 1e-6):", d < 1e-6)
	// Output:
	// cpu agrees with ref (calc_diff < 1e-6): true
}
