package gemm_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Quantize an activation matrix per token and a weight matrix per 128×128
// block, then compute D = A·Bᵀ in BF16.
func Example() {
	const m, n, k = 2, 3, 256
	x := make([]float32, m*k) // activations [m, k]
	w := make([]float32, n*k) // weights [n, k]
	for i := range x {
		x[i] = float32(i%5) - 2 // −2 … 2
	}
	for i := range w {
		w[i] = float32(i%3) * 0.5 // 0, 0.5, 1
	}
	a, err := tensor.QuantizePerToken(x, m, k, tensor.QuantOptions{})
	if err != nil {
		panic(err)
	}
	b, err := tensor.QuantizePerBlock(w, n, k, tensor.QuantOptions{})
	if err != nil {
		panic(err)
	}
	y := make([]tensor.BF16, m*n) // D [m, n], in host memory
	d := &gemm.Out{Rows: m, Cols: n, BF16: tensor.HostOf(y)}
	if err := gemm.FP8GemmNT(context.Background(), ref.New(), a, b, d); err != nil {
		panic(err)
	}
	as, _ := tensor.HostSlice(a.ScalesF32)
	fmt.Println("A scales:", as[:2], "B scales:", b.ScalesF32)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			fmt.Printf("%6.1f", y[i*n+j].Float32())
		}
		fmt.Println()
	}
	// Output:
	// A scales: [0.004464286 0.004464286] B scales: [0.002232143 0.002232143]
	//    0.0  -1.0  -2.0
	//    0.0  -0.5  -1.0
}
