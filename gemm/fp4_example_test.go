package gemm_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Quantize activations per token to FP8 and weights per row and 32
// K-elements to FP4 (E2M1, two per byte, UE8M0 scales: DeepGEMM's FP4
// recipe), then compute D = A·Bᵀ in float32 with fp8_fp4_gemm_nt.
func ExampleFP8FP4GemmNT() {
	const m, n, k = 2, 2, 64
	x := make([]float32, m*k) // activations [m, k]
	w := make([]float32, n*k) // weights [n, k]
	for i := range x {
		x[i] = float32(i%5) - 2 // −2 … 2
	}
	fp4 := []float32{0, 0.5, 1, 1.5, 2, 3, 4, 6} // the E2M1 magnitudes
	for i := range w {
		w[i] = fp4[i%8] * float32(1-2*(i/k)) // row 0 positive, row 1 negative
	}
	opt := tensor.QuantOptions{UE8M0: true}
	a, err := tensor.QuantizePerToken(x, m, k, opt)
	if err != nil {
		panic(err)
	}
	b, err := tensor.QuantizePerTokenFP4(w, n, k, tensor.FP4ScaleK32, opt)
	if err != nil {
		panic(err)
	}
	packed, _ := tensor.HostSlice(b.Data)
	scales, _ := tensor.HostSlice(b.ScalesUE8M0)
	fmt.Printf("B: %d bytes for %d values, first byte %#02x, scales %v (2^%d)\n",
		len(packed), n*k, packed[0], scales, scales[0].Exp())
	y := make([]float32, m*n)
	d := &gemm.Out{Rows: m, Cols: n, F32: tensor.HostOf(y)}
	if err := gemm.FP8FP4GemmNT(context.Background(), ref.New(), a, b, d); err != nil {
		panic(err)
	}
	fmt.Println("D:", y) // exact: every value and scale is representable
	// Output:
	// B: 64 bytes for 128 values, first byte 0x10, scales [127 127 127 127] (2^0)
	// D: [-5.5 5.5 0.5 -0.5]
}
