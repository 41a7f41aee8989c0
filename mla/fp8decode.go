package mla

import (
	"context"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// DecodeFP8 is Decode over the records of a V3.2 FP8 cache, FlashMLA's
// flash_mla_with_kvcache(..., is_fp8_kvcache=True) without indices: it
// wraps cache as a PagedCache of the FP8 storage kind (one KV head,
// HeadDim 576) and calls Decode, whose Go backends dequantize each key row
// (DequantizeFP8Row's values) as they gather it. q is [B, SQ, HQ, 576];
// blockTable, cacheSeqlens and opts are as in Decode (head_dim_v defaults
// to 512). Results and errors are Decode's.
func DecodeFP8(ctx context.Context, be Backend, q Query, cache *FP8Cache, blockTable [][]int32, cacheSeqlens []int32, opts *Options) (out, lse []float32, err error) {
	if err := cache.Check(); err != nil {
		return nil, nil, err
	}
	pc := &PagedCache{DType: tensor.E4M3T, NumBlocks: cache.NumBlocks, PageSize: cache.PageSize, NumKVHeads: 1, HeadDim: HeadDim, FP8: cache}
	return Decode(ctx, be, q, pc, blockTable, cacheSeqlens, opts)
}
