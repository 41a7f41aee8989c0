package gemm_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Score a request's cached keys with the lightning indexer: write four keys
// into a paged indexer cache through a block table, then compute one
// decode step's logits over the three visible ones.
func ExamplePagedMQALogits() {
	const heads, d = 2, 4
	cache, err := gemm.NewIndexerCache(4, 2, d) // 4 blocks of 2 tokens
	if err != nil {
		panic(err)
	}
	blockTable := []int32{3, 1} // request 0: logical block 0 → block 3, 1 → block 1
	keys := []float32{
		2, 0, 0, 0, // key 0
		0, 4, 0, 0, // key 1
		-1, -1, 0, 0, // key 2: negative scores, ReLU gives 0
		1, 1, 0, 0, // key 3: not visible yet
	}
	if err := cache.WriteTokens(blockTable, 0, keys, tensor.QuantOptions{}); err != nil {
		panic(err)
	}
	q := make([]tensor.E4M3, heads*d) // head 0 reads dim 0, head 1 dim 1
	q[0], q[d+1] = tensor.E4M3FromFloat32(1), tensor.E4M3FromFloat32(1)
	in := &gemm.PagedMQALogitsInput{
		Q: q, B: 1, NextN: 1, Heads: heads, Cache: cache,
		Weights:     []float32{1, 0.5},
		ContextLens: []int32{3}, // keys 0, 1, 2
		BlockTable:  blockTable, MaxBlocks: 2, MaxContextLen: 4,
	}
	logits := make([]float32, 4)
	if err := gemm.PagedMQALogits(context.Background(), ref.New(), in, logits, true); err != nil {
		panic(err)
	}
	fmt.Printf("%.4g\n", logits)
	// Output: [2 2 0 -Inf]
}
