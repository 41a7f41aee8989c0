package gemm

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// IndexerCache is DeepGEMM's paged indexer cache, fused_kv_cache
// [NumBlocks, BlockKV, 1, HeadDim+4] uint8 (132 bytes per token for
// HeadDim 128), as fp8_paged_mqa_logits reads it. The layout is per
// block, not per token: block p occupies Data[p·BlockBytes() :
// (p+1)·BlockBytes()], first the E4M3 rows of its BlockKV tokens
// (HeadDim bytes each, token t at byte t·HeadDim), then their BlockKV
// float32 scales, little-endian (token t's at byte BlockKV·HeadDim + 4t).
// Key t of a request lives in block BlockTable[t/BlockKV], slot t%BlockKV.
type IndexerCache struct {
	// NumBlocks, BlockKV (tokens per block; upstream uses 64, or 32 on
	// SM100) and HeadDim (index_head_dim) are the dimensions.
	NumBlocks, BlockKV, HeadDim int
	// Data holds NumBlocks·BlockKV·(HeadDim+4) bytes.
	Data []byte
}

// maxIndexerCacheBytes bounds NewIndexerCache's allocation.
const maxIndexerCacheBytes = 1 << 40

// NewIndexerCache allocates a zeroed cache of numBlocks blocks of blockKV
// tokens with headDim E4M3 values each (zero scales). Errors: *ArgError
// wrapping ErrShape for a dimension < 1 or a cache above 2^40 bytes.
func NewIndexerCache(numBlocks, blockKV, headDim int) (*IndexerCache, error) {
	c := &IndexerCache{NumBlocks: numBlocks, BlockKV: blockKV, HeadDim: headDim}
	if err := c.checkDims(); err != nil {
		return nil, err
	}
	c.Data = make([]byte, numBlocks*c.BlockBytes())
	return c, nil
}

func (c *IndexerCache) checkDims() error {
	if c.NumBlocks < 1 || c.BlockKV < 1 || c.HeadDim < 1 {
		return argErr("fused_kv_cache", ErrShape, "num_blocks %d, block_kv %d, head_dim %d: want ≥ 1", c.NumBlocks, c.BlockKV, c.HeadDim)
	}
	if c.HeadDim > 1<<16 || !mulOK(c.BlockKV, c.HeadDim+4) || !mulOK(c.NumBlocks, c.BlockKV*(c.HeadDim+4)) || c.NumBlocks*c.BlockKV*(c.HeadDim+4) > maxIndexerCacheBytes {
		return argErr("fused_kv_cache", ErrShape, "[%d, %d, 1, %d] too large", c.NumBlocks, c.BlockKV, c.HeadDim+4)
	}
	return nil
}

// Check reports whether c's dimensions and Data length are consistent.
// Errors: *ArgError wrapping ErrShape naming "fused_kv_cache".
func (c *IndexerCache) Check() error {
	if c == nil {
		return argErr("fused_kv_cache", ErrShape, "nil cache")
	}
	if err := c.checkDims(); err != nil {
		return err
	}
	if want := c.NumBlocks * c.BlockBytes(); len(c.Data) != want {
		return argErr("fused_kv_cache", ErrShape, "%d bytes, want [%d, %d, 1, %d] = %d", len(c.Data), c.NumBlocks, c.BlockKV, c.HeadDim+4, want)
	}
	return nil
}

// BlockBytes returns the bytes of one block, BlockKV·(HeadDim+4): the
// cache's stride(0).
func (c *IndexerCache) BlockBytes() int { return c.BlockKV * (c.HeadDim + 4) }

// Codes returns the E4M3 row of the token in slot of block (a view into
// Data, HeadDim long). It panics for a block or slot out of range, a
// caller bug.
func (c *IndexerCache) Codes(block, slot int) []tensor.E4M3 {
	c.checkSlot(block, slot)
	off := block*c.BlockBytes() + slot*c.HeadDim
	return E4M3Bytes(c.Data[off : off+c.HeadDim])
}

// BlockCodes returns the E4M3 rows of all BlockKV tokens of block, [BlockKV,
// HeadDim] row-major (a view into Data).
func (c *IndexerCache) BlockCodes(block int) []tensor.E4M3 {
	c.checkSlot(block, 0)
	off := block * c.BlockBytes()
	return E4M3Bytes(c.Data[off : off+c.BlockKV*c.HeadDim])
}

// Scale returns the float32 scale of the token in slot of block. It panics
// for a block or slot out of range.
func (c *IndexerCache) Scale(block, slot int) float32 {
	c.checkSlot(block, slot)
	off := block*c.BlockBytes() + c.BlockKV*c.HeadDim + 4*slot
	return math.Float32frombits(binary.LittleEndian.Uint32(c.Data[off:]))
}

func (c *IndexerCache) checkSlot(block, slot int) {
	if block < 0 || block >= c.NumBlocks || slot < 0 || slot >= c.BlockKV {
		panic(fmt.Sprintf("gemm: indexer cache block %d slot %d outside [%d, %d]", block, slot, c.NumBlocks, c.BlockKV))
	}
}

// E4M3Bytes reinterprets raw bytes as E4M3 codes (no copy).
func E4M3Bytes(b []byte) []tensor.E4M3 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*tensor.E4M3)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// SetToken stores one token: codes (HeadDim E4M3 values) and its scale in
// slot of block. Errors: *ArgError wrapping ErrShape for a bad block,
// slot or codes length.
func (c *IndexerCache) SetToken(block, slot int, codes []tensor.E4M3, scale float32) error {
	if err := c.Check(); err != nil {
		return err
	}
	if block < 0 || block >= c.NumBlocks {
		return argErr("block", ErrShape, "%d outside [0, num_blocks %d)", block, c.NumBlocks)
	}
	if slot < 0 || slot >= c.BlockKV {
		return argErr("slot", ErrShape, "%d outside [0, block_kv %d)", slot, c.BlockKV)
	}
	if len(codes) != c.HeadDim {
		return argErr("codes", ErrShape, "%d values, want head_dim %d", len(codes), c.HeadDim)
	}
	copy(c.Codes(block, slot), codes)
	off := block*c.BlockBytes() + c.BlockKV*c.HeadDim + 4*slot
	binary.LittleEndian.PutUint32(c.Data[off:], math.Float32bits(scale))
	return nil
}

// WriteTokens quantizes x [n, HeadDim] (row-major float32, n =
// len(x)/HeadDim) per token and stores row r as key start+r of the request
// whose block_table row is blockTable: block blockTable[(start+r)/BlockKV],
// slot (start+r)%BlockKV. The quantizer is tensor.QuantizePerToken's: one
// scale per token, amax clamped to ≥ 1e−4, scale = amax/448 (DeepGEMM
// tests' kv_cache_cast_to_fp8), or that scale rounded up to a power of two
// with opt.UE8M0 (stored as its float32 value; DeepSeek-V3.2's act_quant
// derives its power of two from amax·float32(1/448) instead, which differs
// at powers of two: quantize with that recipe yourself and store with
// SetToken for bit fidelity to the model). Appending a decode token
// is WriteTokens(row, seqLen, x). blockTable may be the same table an
// mla.Pager keeps for the MLA cache when both caches share block and page
// sizes. Errors: *ArgError wrapping ErrShape for a bad x length or start,
// ErrIndices for a position beyond blockTable or a block outside the
// cache; nothing is written then.
func (c *IndexerCache) WriteTokens(blockTable []int32, start int, x []float32, opt tensor.QuantOptions) error {
	if err := c.Check(); err != nil {
		return err
	}
	if len(x)%c.HeadDim != 0 {
		return argErr("x", ErrShape, "%d values, not a multiple of head_dim %d", len(x), c.HeadDim)
	}
	n := len(x) / c.HeadDim
	if start < 0 || start > math.MaxInt32-n {
		return argErr("start", ErrShape, "%d outside [0, 2^31−n)", start)
	}
	for p := start / c.BlockKV; n > 0 && p <= (start+n-1)/c.BlockKV; p++ {
		if p >= len(blockTable) {
			return argErr("block_table", ErrIndices, "position %d needs block %d, table has %d", start+n-1, p, len(blockTable))
		}
		if v := blockTable[p]; v < 0 || int(v) >= c.NumBlocks {
			return argErr(indexArg("block_table", p), ErrIndices, "block %d outside [0, num_blocks %d)", v, c.NumBlocks)
		}
	}
	if n == 0 {
		return nil
	}
	m, err := tensor.QuantizePerToken(x, n, c.HeadDim, opt)
	if err != nil {
		return argErr("x", ErrShape, "%v", err)
	}
	h, err := m.Host()
	if err != nil {
		return err
	}
	kbs := m.KBlocks()
	for r := 0; r < n; r++ {
		pos := start + r
		// One scale per token: for HeadDim > 128 the quantizer's 128-wide
		// blocks are re-scaled to the largest block scale of the row.
		codes, sc := h.Data[r*c.HeadDim:(r+1)*c.HeadDim], h.Scale(0, r, 0)
		if kbs > 1 {
			codes, sc = requantizeRow(x[r*c.HeadDim:(r+1)*c.HeadDim], opt)
		}
		if err := c.SetToken(int(blockTable[pos/c.BlockKV]), pos%c.BlockKV, codes, sc); err != nil {
			return err
		}
	}
	return nil
}

// requantizeRow quantizes one row wider than a scale block with a single
// scale over the whole row (QuantizePerToken's rule on a 1×len(x) block).
func requantizeRow(x []float32, opt tensor.QuantOptions) ([]tensor.E4M3, float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	// A one-block quantization of [amax] gives the row's scale.
	m, _ := tensor.QuantizePerToken([]float32{amax}, 1, 1, opt)
	h, _ := m.Host()
	sc := h.Scale(0, 0, 0)
	codes := make([]tensor.E4M3, len(x))
	tensor.EncodeE4M3Scaled(codes, x, 1/sc)
	return codes, sc
}

// Dequantize returns the float32 keys [n, HeadDim] of positions [0, n) of
// the request whose block_table row is blockTable: code value · scale.
// Errors: as WriteTokens for positions beyond the table or the cache.
func (c *IndexerCache) Dequantize(blockTable []int32, n int) ([]float32, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if n < 0 || n > len(blockTable)*c.BlockKV {
		return nil, argErr("n", ErrIndices, "%d keys, block_table holds %d", n, len(blockTable)*c.BlockKV)
	}
	out := make([]float32, n*c.HeadDim)
	for t := 0; t < n; t++ {
		b := blockTable[t/c.BlockKV]
		if b < 0 || int(b) >= c.NumBlocks {
			return nil, argErr(indexArg("block_table", t/c.BlockKV), ErrIndices, "block %d outside [0, num_blocks %d)", b, c.NumBlocks)
		}
		s := c.Scale(int(b), t%c.BlockKV)
		for i, q := range c.Codes(int(b), t%c.BlockKV) {
			out[t*c.HeadDim+i] = q.Float32() * s
		}
	}
	return out, nil
}

// FlattenBlockTable turns per-request block lists (as mla.Pager's
// BlockTable holds them) into block_table [len(rows), maxBlocks] row-major,
// padded with 0, with maxBlocks the longest row (at least 1).
func FlattenBlockTable(rows [][]int32) (table []int32, maxBlocks int) {
	maxBlocks = 1
	for _, r := range rows {
		maxBlocks = max(maxBlocks, len(r))
	}
	table = make([]int32, len(rows)*maxBlocks)
	for i, r := range rows {
		copy(table[i*maxBlocks:], r)
	}
	return table, maxBlocks
}

// indexArg names an element of an argument: "block_table[1,4]".
func indexArg(name string, idx ...int) string {
	var sb strings.Builder
	sb.WriteString(name)
	sb.WriteByte('[')
	for i, v := range idx {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%d", v)
	}
	sb.WriteByte(']')
	return sb.String()
}
