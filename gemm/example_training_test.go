package gemm_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The weight gradients of two experts in one call: expert 0 saw 128 tokens,
// expert 1 saw 256. dY [384, 2] and X [384, 3] are stored token-major (the
// MN-major operands of the TN layout) and quantized per channel; D[g] =
// dY_gᵀ·X_g is [2, 3] per expert.
func ExampleKGroupedFP8GemmTNContiguous() {
	ks := []int{128, 256}
	const tokens, m, n = 384, 2, 3
	dy := make([]float32, tokens*m)
	x := make([]float32, tokens*n)
	for t := 0; t < tokens; t++ {
		dy[t*m], dy[t*m+1] = 1, 0.5
		for j := 0; j < n; j++ {
			x[t*n+j] = float32(j + 1)
		}
	}
	opt := tensor.QuantOptions{UE8M0: true} // power-of-two scales: exact here
	a, err := tensor.QuantizePerChannel(dy, tokens, m, opt)
	if err != nil {
		panic(err)
	}
	b, err := tensor.QuantizePerChannel(x, tokens, n, opt)
	if err != nil {
		panic(err)
	}
	dw := make([]float32, len(ks)*m*n) // [G, M, N] flattened
	d := &gemm.Out{Rows: len(ks) * m, Cols: n, F32: tensor.HostOf(dw)}
	if err := gemm.KGroupedFP8GemmTNContiguous(context.Background(), ref.New(), a, b, d, ks); err != nil {
		panic(err)
	}
	for g := range ks {
		fmt.Printf("expert %d: %v %v\n", g, dw[g*m*n:g*m*n+n], dw[g*m*n+n:(g+1)*m*n])
	}
	// Output:
	// expert 0: [128 256 384] [64 128 192]
	// expert 1: [256 512 768] [128 256 384]
}

// The data gradient of a linear layer, dX = dY·W, reuses the forward
// weight W [N, K] as it is: its FP8 bytes and 128×128 scales are the
// MN-major B of the NN layout (logical [K, N], stored [N, K]).
func ExampleFP8GemmNN() {
	const tokens, n, k = 2, 128, 3 // W maps k=3 inputs to n=128 outputs
	w := make([]float32, n*k)
	for i := range w {
		w[i] = float32(i%k) - 1 // columns −1, 0, 1
	}
	opt := tensor.QuantOptions{UE8M0: true} // power-of-two scales: exact here
	wq, err := tensor.QuantizePerBlock(w, n, k, opt)
	if err != nil {
		panic(err)
	}
	dy := make([]float32, tokens*n)
	for i := range dy {
		dy[i] = float32(i/n + 1) // token 0: all 1, token 1: all 2
	}
	a, err := tensor.QuantizePerToken(dy, tokens, n, opt)
	if err != nil {
		panic(err)
	}
	b := &tensor.FP8MNMatrix{MN: k, K: n, Data: wq.Data, ScaleMN: tensor.ScaleBlock, Format: wq.Format, ScalesUE8M0: wq.ScalesUE8M0}
	dx := make([]float32, tokens*k)
	if err := gemm.FP8GemmNN(context.Background(), ref.New(), a, b, &gemm.Out{Rows: tokens, Cols: k, F32: tensor.HostOf(dx)}); err != nil {
		panic(err)
	}
	fmt.Println(dx)
	// Output:
	// [-128 0 128 -256 0 256]
}
