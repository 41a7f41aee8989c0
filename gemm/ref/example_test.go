package ref_test

import (
	"context"
	"fmt"

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
	a, _ := gemm.QuantizePerToken(x, m, k, gemm.QuantOptions{})
	b, _ := gemm.QuantizePerBlock(w, n, k, gemm.QuantOptions{})
	d := &gemm.Out{Rows: m, Cols: n, F32: make([]float32, m*n), C: []float32{10, 20}}
	if err := ref.New().GemmNT(context.Background(), a, b, d); err != nil {
		panic(err)
	}
	fmt.Printf("%.3f\n", d.F32) // the float32 scales 2/448 are not exact
	// Output:
	// [266.000 532.000]
}
