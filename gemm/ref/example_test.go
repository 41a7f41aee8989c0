package ref_test

import (
	"context"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
)

// D = C + A·Bᵀ in float32 with one 128-wide K block: A's row is all 2s
// (scale 2/448), B's rows are all 1s and all 2s (one block, scale 2/448); all
// the values are exact in E4M3.
func Example() {
	const m, n, k = 1, 2, 128
	x := make([]float32, m*k)
	w := make([]float32, n*k)
	for i := range x {
		x[i] = 2
	}
	for i := range w {
		w[i] = float32(1 + i/k)
	}
	a, _ := tensor.QuantizePerToken(x, m, k, tensor.QuantOptions{})
	b, _ := tensor.QuantizePerBlock(w, n, k, tensor.QuantOptions{})
	y := make([]float32, m*n)
	d := &gemm.Out{Rows: m, Cols: n, F32: tensor.HostOf(y), C: tensor.HostOf([]float32{10, 20})}
	if err := gemm.FP8GemmNT(context.Background(), ref.New(), a, b, d); err != nil {
		panic(err)
	}
	fmt.Printf("%.3f\n", y) // the float32 scales 2/448 are not exact
	// Output:
	// [266.000 532.000]
}
