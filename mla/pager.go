package mla

import "errors"

// ErrCacheFull reports that a Pager has no free block left.
var ErrCacheFull = errors.New("mla: paged cache full")

// Pager hands out the blocks of a PagedCache to growing sequences and keeps
// BlockTable and CacheSeqlens in the form Decode takes, the bookkeeping an
// inference engine's block manager does around FlashMLA (vLLM's
// BlockSpaceManager, SGLang's token-to-KV pool). Blocks are taken from a free
// list in ascending order and returned by Reset.
type Pager struct {
	Cache        *PagedCache
	BlockTable   [][]int32 // [batch][pages used]
	CacheSeqlens []int32   // [batch]
	free         []int32   // stack; the next block is free[len-1]
}

// NewPager returns a pager over cache for batch sequences, all empty. It
// returns an *ArgError wrapping ErrShape for an invalid cache, batch < 1 or
// batch above cache.NumBlocks (every non-empty sequence holds at least one
// block, so a larger batch could never hold a token in each sequence; the
// bound also keeps a mistyped batch from allocating the block tables of
// billions of sequences).
func NewPager(cache *PagedCache, batch int) (*Pager, error) {
	if err := cache.Check(); err != nil {
		return nil, err
	}
	if batch < 1 || batch > cache.NumBlocks {
		return nil, argErr("batch", ErrShape, "batch %d, want 1 … %d (the cache's block count)", batch, cache.NumBlocks)
	}
	p := &Pager{Cache: cache, BlockTable: make([][]int32, batch), CacheSeqlens: make([]int32, batch)}
	p.free = make([]int32, cache.NumBlocks)
	for i := range p.free {
		p.free[i] = int32(cache.NumBlocks - 1 - i)
	}
	return p, nil
}

// FreeBlocks returns the number of unallocated blocks.
func (p *Pager) FreeBlocks() int { return len(p.free) }

// Append adds one token to sequence req: rows holds its NumKVHeads rows of
// HeadDim values ([h_kv][HeadDim] flattened; for DeepSeek-V3, the 512-wide
// normalised latent then the 64-wide rotated k_pe), encoded into the cache
// dtype. It allocates a block when the sequence's last page is full. Errors:
// *ArgError wrapping ErrShape for req out of range or len(rows) !=
// NumKVHeads·HeadDim; ErrCacheFull (nothing changed) when no block is free.
func (p *Pager) Append(req int, rows []float32) error {
	if req < 0 || req >= len(p.CacheSeqlens) {
		return argErr("req", ErrShape, "request %d outside [0, %d)", req, len(p.CacheSeqlens))
	}
	c := p.Cache
	if len(rows) != c.NumKVHeads*c.HeadDim {
		return argErr("rows", ErrShape, "%d values, want h_kv %d × head dim %d", len(rows), c.NumKVHeads, c.HeadDim)
	}
	t := int(p.CacheSeqlens[req])
	if t/c.PageSize >= len(p.BlockTable[req]) {
		if len(p.free) == 0 {
			return ErrCacheFull
		}
		b := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		p.BlockTable[req] = append(p.BlockTable[req], b)
	}
	block := int(p.BlockTable[req][t/c.PageSize])
	for h := range c.NumKVHeads {
		if err := c.SetRow(block, t%c.PageSize, h, rows[h*c.HeadDim:(h+1)*c.HeadDim]); err != nil {
			return err
		}
	}
	p.CacheSeqlens[req]++
	return nil
}

// Reset empties sequence req and returns its blocks to the free list (the
// stale rows stay in the cache; Decode never reads past a length).
func (p *Pager) Reset(req int) error {
	if req < 0 || req >= len(p.CacheSeqlens) {
		return argErr("req", ErrShape, "request %d outside [0, %d)", req, len(p.CacheSeqlens))
	}
	for i := len(p.BlockTable[req]) - 1; i >= 0; i-- {
		p.free = append(p.free, p.BlockTable[req][i])
	}
	p.BlockTable[req] = p.BlockTable[req][:0]
	p.CacheSeqlens[req] = 0
	return nil
}
