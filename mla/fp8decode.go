package mla

import (
	"context"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// DecodeFP8 is Decode over a V3.2 FP8 cache, FlashMLA's
// flash_mla_with_kvcache(..., is_fp8_kvcache=True) without indices: dense
// MLA decode where every key row is dequantized from its 656-byte record
// (see DequantizeFP8Row) before the attention, as the upstream kernel does.
// q is [B, SQ, HQ, 576]; blockTable, cacheSeqlens and opts are as in Decode
// (one KV head; head_dim_v defaults to 512). It returns out [B, SQ, HQ,
// HeadDimV] and lse [B, HQ, SQ] with Decode's conventions.
//
// The pages a request reads (the first ceil(L_i/PageSize) entries of its
// block-table row) are dequantized once per call, in parallel, into a
// pooled float32 cache handed to be (nil: the default backend); slots past
// L_i are never attended (they are dequantized with their page, NaN stays
// NaN, and never read by the attention).
// Errors: those of Decode, with cache errors naming "k_cache".
func DecodeFP8(ctx context.Context, be Backend, q Query, cache *FP8Cache, blockTable [][]int32, cacheSeqlens []int32, opts *Options) (out, lse []float32, err error) {
	if err := cache.Check(); err != nil {
		return nil, nil, err
	}
	host, err := cache.host("k_cache")
	if err != nil {
		return nil, nil, err
	}
	if len(cacheSeqlens) != len(blockTable) {
		return nil, nil, argErr("block_table", ErrShape, "%d rows, want batch %d", len(blockTable), len(cacheSeqlens))
	}
	// Validate the part of the table that is read, then compact its pages.
	need := 0
	for i, l := range cacheSeqlens {
		if l < 0 {
			return nil, nil, argErr("cache_seqlens", ErrSeqlen, "cache_seqlens[%d] = %d is negative", i, l)
		}
		n := (int(l) + cache.PageSize - 1) / cache.PageSize
		if len(blockTable[i]) < n {
			return nil, nil, argErr("block_table", ErrBlockTable, "row %d has %d entries, sequence of %d tokens needs %d pages of %d", i, len(blockTable[i]), l, n, cache.PageSize)
		}
		for k, id := range blockTable[i][:n] {
			if id < 0 || int(id) >= cache.NumBlocks {
				return nil, nil, argErr("block_table", ErrBlockTable, "block_table[%d][%d] = %d outside [0, %d)", i, k, id, cache.NumBlocks)
			}
		}
		need += n
	}
	remap := make(map[int32]int32, need)
	var order []int32
	table := make([][]int32, len(blockTable))
	for i, l := range cacheSeqlens {
		n := (int(l) + cache.PageSize - 1) / cache.PageSize
		table[i] = make([]int32, n)
		for k, id := range blockTable[i][:n] {
			nid, ok := remap[id]
			if !ok {
				nid = int32(len(order))
				remap[id] = nid
				order = append(order, id)
			}
			table[i][k] = nid
		}
	}
	// The dequantized pages live in a pooled buffer for the call; each row
	// is decoded with the SIMD E4M3 kernels (the bits of DequantizeFP8Row).
	rows := len(order) * cache.PageSize
	buf := getFloats(rows * HeadDim)
	defer putFloats(buf)
	dense := &PagedCache{DType: tensor.F32, NumBlocks: len(order), PageSize: cache.PageSize, NumKVHeads: 1, HeadDim: HeadDim,
		F32: tensor.Host[float32](buf)}
	ks := kernels.Best()
	err = parallelFor(ctx, len(order), func() (func(int), func()) {
		return func(nb int) {
			id := int(order[nb])
			for s := range cache.PageSize {
				r := nb*cache.PageSize + s
				dequantFast(ks, buf[r*HeadDim:(r+1)*HeadDim], host.record(id*cache.PageSize+s))
			}
		}, func() {}
	})
	if err != nil {
		return nil, nil, err
	}
	return Decode(ctx, be, q, dense, table, cacheSeqlens, opts)
}
