package mla_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/mla"
)

// ExampleSparseDecode attends one query over two of a cache's tokens picked
// by index, −1 padding the rest of the row, with an attention sink.
func ExampleSparseDecode() {
	cache, _ := mla.NewFP8PagedCache(4, 64) // 256 token slots, 656 bytes each
	k := make([]float32, mla.HeadDim)
	k[0] = 1                     // token 70: V[0] = 1
	_ = cache.SetRow(1, 6, 0, k) // quantized with FP8RecipeV32
	k[0] = -1                    // token 3: V[0] = −1
	_ = cache.SetRow(0, 3, 0, k)

	q := make([]float32, mla.HeadDim)
	q[0] = 4 // scores: scale·4·(±1) = ±1
	indices := []int32{70, 3, -1, -1}
	out, lse, err := mla.SparseDecode(context.Background(), nil, mla.Query{Data: q, B: 1, SQ: 1, HQ: 1}, cache, indices, 4,
		&mla.SparseDecodeOptions{Scale: 0.25, AttnSink: []float32{0}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// out[0] = (e − 1/e)/(e + 1/e + e⁰): the sink (logit 0) adds e⁰ to the
	// denominator only (tanh(1) = 0.7616 without it); lse = ln(e + 1/e)
	// leaves the sink out.
	fmt.Printf("out[0] %.4f lse %.4f\n", out[0], lse[0])
	// Output: out[0] 0.5752 lse 1.1269
}
