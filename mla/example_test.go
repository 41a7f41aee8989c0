package mla_test

import (
	"context"
	"fmt"
	"math"

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

// Plan cuts a ragged batch (lengths 100, 0 and 700 tokens) into 3 parts
// with get_mla_metadata's greedy rule: the long request is split across
// parts 1 and 2, so it owns two split slots and needs a combine.
func ExamplePlan() {
	s, err := mla.Plan([]int32{100, 0, 700}, 3)
	if err != nil {
		panic(err)
	}
	for i, p := range s.Parts {
		fmt.Printf("part %d: request %d token %d … request %d token %d, first split %d\n",
			i, p.BeginReq, p.BeginSeqlen, p.EndReq, p.EndSeqlen, p.BeginSplit)
	}
	fmt.Println("num_splits", s.NumSplits)
	// Output:
	// part 0: request 0 token 0 … request 1 token 0, first split 0
	// part 1: request 2 token 0 … request 2 token 640, first split 0
	// part 2: request 2 token 640 … request 2 token 700, first split 1
	// num_splits [0 1 2 4]
}

// Combine merges attention computed separately over two key ranges (say,
// two context-parallel ranks): each partial output is normalised within its
// range and comes with its natural-log LSE.
func ExampleCombine() {
	// Range A saw one key with score ln 1 = 0 and value 1; range B saw one
	// key with score ln 3 and value 5. Together: (1·1 + 3·5)/4 = 4, lse ln 4.
	dst := make([]float32, 1)
	lse, err := mla.Combine(dst, [][]float32{{1}, {5}}, []float32{0, float32(math.Log(3))})
	if err != nil {
		panic(err)
	}
	fmt.Printf("out %.4f lse %.4f (ln 4 = %.4f)\n", dst[0], lse, math.Log(4))
	// In base 2 (FlashInfer's convention) that LSE is 2.
	fmt.Printf("base 2: %.4f\n", mla.LSEToBase2(lse))
	// Output:
	// out 4.0000 lse 1.3863 (ln 4 = 1.3863)
	// base 2: 2.0000
}
