package mla_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// A request of 3 cached tokens and one of length 0, DeepSeek-V3 row layout
// (576 = 512 latent + 64 RoPE), two query heads sharing one KV head. Token t
// has V channel 0 = t+1 and RoPE channel 575 = t. Head 0's query is zero, so
// it averages V uniformly (out 2, lse ln 3); head 1's query has 10 in
// channel 575, so it leans towards the later tokens.
func ExampleDecode() {
	cache, err := mla.NewPagedCache(tensor.BF16T, 2, 64, 1, mla.HeadDim)
	if err != nil {
		panic(err)
	}
	row := make([]float32, mla.HeadDim)
	for t := range 3 {
		row[0], row[575] = float32(t+1), float32(t)
		if err := cache.SetRow(1, t, 0, row); err != nil { // request 0 lives in block 1
			panic(err)
		}
	}
	q := make([]float32, 2*1*2*mla.HeadDim) // [b=2, s_q=1, h_q=2, 576]
	q[1*mla.HeadDim+575] = 10               // request 0, head 1
	out, lse, err := mla.Decode(context.Background(), nil,
		mla.Query{Data: q, B: 2, SQ: 1, HQ: 2}, cache,
		[][]int32{{1}, {}}, []int32{3, 0}, &mla.Options{Scale: mla.DeepSeekV3Scale})
	if err != nil {
		panic(err)
	}
	for h := range 2 {
		fmt.Printf("request 0 head %d: out[0] = %.4f, lse = %.4f\n", h, out[h*mla.HeadDimV], lse[h])
	}
	fmt.Printf("request 1 (empty): out[0] = %v, lse = %v\n", out[2*mla.HeadDimV], lse[2])
	// Output:
	// request 0 head 0: out[0] = 2.0000, lse = 1.0986
	// request 0 head 1: out[0] = 2.7040, lse = 2.9865
	// request 1 (empty): out[0] = 0, lse = +Inf
}
