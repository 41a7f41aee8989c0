package cpu_test

import (
	"context"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"

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
	a, _ := tensor.QuantizePerToken(testutil.Normal(r, m*k, 0, 1), m, k, tensor.QuantOptions{})
	b, _ := tensor.QuantizePerBlock(testutil.Normal(r, n*k, 0, 1), n, k, tensor.QuantOptions{})
	yf, ys := make([]float32, m*n), make([]float32, m*n)
	fast := &gemm.Out{Rows: m, Cols: n, F32: tensor.HostOf(yf)}
	slow := &gemm.Out{Rows: m, Cols: n, F32: tensor.HostOf(ys)}
	if err := gemm.FP8GemmNT(context.Background(), cpu.New(cpu.Options{}), a, b, fast); err != nil {
		panic(err)
	}
	if err := gemm.FP8GemmNT(context.Background(), ref.New(), a, b, slow); err != nil {
		panic(err)
	}
	d := testutil.CalcDiff(testutil.F64(yf), testutil.F64(ys))
	fmt.Println("cpu agrees with ref (calc_diff < 1e-6):", d < 1e-6)
	// Output:
	// cpu agrees with ref (calc_diff < 1e-6): true
}
