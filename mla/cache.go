package mla

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// Model dimensions of DeepSeek-V2/V3 absorbed MLA, the only shape the
// upstream dense decode kernel accepts (FlashMLA csrc: head_size_k == 576,
// head_size_v == 512).
const (
	KVLoraRank    = 512 // latent width c_kv, = HeadDimV
	QKRopeHeadDim = 64  // decoupled RoPE key width
	HeadDim       = KVLoraRank + QKRopeHeadDim
	HeadDimV      = KVLoraRank
	// UpstreamPageSize is the only page size the upstream CUDA kernel
	// accepts (page_block_size == kBlockN == 64). The Go backends accept any.
	UpstreamPageSize = 64
)

// DeepSeekV3Scale is DeepSeek-V3's softmax scale,
// (qk_nope_head_dim+qk_rope_head_dim)^-0.5 · mscale² with
// mscale = 0.1·ln(40)+1 (YaRN factor 40), ≈ 0.13524. FlashMLA's default
// (1/√576) is not the model's scale; pass this one for DeepSeek-V3.
var DeepSeekV3Scale = float32(func() float64 {
	ms := 0.1*math.Log(40) + 1
	return ms * ms / math.Sqrt(192)
}())

// PagedCache is a paged KV cache: NumBlocks pages, each of PageSize tokens ×
// NumKVHeads × HeadDim channels, row-major ([NumBlocks][PageSize][NumKVHeads]
// [HeadDim]), mirroring FlashMLA's k_cache [num_blocks, page_block_size, h_kv,
// d]. V has no storage of its own: it is the first HeadDimV channels of the
// same rows. Exactly one of F32, BF16, F16 holds the elements, selected by
// DType (tensor.F32, tensor.BF16T or tensor.F16T), as tensor.Storage: host
// memory (tensor.Host, what NewPagedCache allocates) or, for a device
// backend, a device buffer that stays there between decode steps.
//
// DType tensor.E4M3T is the DeepSeek-V3.2 FP8 storage kind
// (is_fp8_kvcache): FP8 holds the tokens as 656-byte records (see
// FP8Cache; NewFP8PagedCache makes one), with one KV head and HeadDim 576.
// Decode reads it in place (the Go backends dequantize each key row as they
// gather it), SetRow quantizes with FP8RecipeV32, Row dequantizes, and
// SparseDecode requires this kind.
type PagedCache struct {
	DType      tensor.DType
	NumBlocks  int
	PageSize   int
	NumKVHeads int
	HeadDim    int
	F32        tensor.Storage[float32]
	BF16       tensor.Storage[tensor.BF16]
	F16        tensor.Storage[tensor.F16]
	FP8        *FP8Cache
}

// NewFP8PagedCache allocates a zeroed PagedCache of the V3.2 FP8 storage
// kind: numBlocks pages of pageSize tokens, one KV head, HeadDim 576, the
// records in a fresh FP8Cache. Errors: those of NewFP8Cache.
func NewFP8PagedCache(numBlocks, pageSize int) (*PagedCache, error) {
	fc, err := NewFP8Cache(numBlocks, pageSize)
	if err != nil {
		return nil, err
	}
	return &PagedCache{DType: tensor.E4M3T, NumBlocks: numBlocks, PageSize: pageSize, NumKVHeads: 1, HeadDim: HeadDim, FP8: fc}, nil
}

// CacheHost is a PagedCache resolved to host slices (PagedCache.Host): the
// embedded cache's layout with F32, BF16 and F16 as slices (nil where the
// cache has none).
type CacheHost struct {
	*PagedCache
	F32  []float32
	BF16 []tensor.BF16
	F16  []tensor.F16
	fp8  fp8Host // the FP8 storage kind's records
}

// Host resolves c's storage to host slices once (no copy). Errors: an
// *ArgError wrapping ErrUnsupported and tensor.ErrNotHost for storage the
// CPU cannot address; ErrShape for a nil c.
func (c *PagedCache) Host() (CacheHost, error) {
	if c == nil {
		return CacheHost{}, argErr("k_cache", ErrShape, "nil cache")
	}
	h := CacheHost{PagedCache: c}
	if c.DType == tensor.E4M3T && c.FP8 != nil {
		var err error
		if h.fp8, err = c.FP8.host("k_cache"); err != nil {
			return CacheHost{}, err
		}
		return h, nil
	}
	var err error
	if h.F32, err = tensor.HostSlice(c.F32); err == nil {
		if h.BF16, err = tensor.HostSlice(c.BF16); err == nil {
			h.F16, err = tensor.HostSlice(c.F16)
		}
	}
	if err != nil {
		return CacheHost{}, &ArgError{Arg: "k_cache", Err: ErrUnsupported, Msg: err.Error(), cause: err}
	}
	return h, nil
}

// NewPagedCache allocates a zeroed cache. It returns an *ArgError wrapping
// ErrDType for a dtype other than F32/BF16/F16 and ErrShape for a
// non-positive page size, head count or head dim, or a negative block count.
func NewPagedCache(dt tensor.DType, numBlocks, pageSize, numKVHeads, headDim int) (*PagedCache, error) {
	c := &PagedCache{DType: dt, NumBlocks: numBlocks, PageSize: pageSize, NumKVHeads: numKVHeads, HeadDim: headDim}
	if err := c.checkDims(); err != nil {
		return nil, err
	}
	n := numBlocks * pageSize * numKVHeads * headDim
	switch dt {
	case tensor.F32:
		c.F32 = tensor.Host[float32](make([]float32, n))
	case tensor.BF16T:
		c.BF16 = tensor.Host[tensor.BF16](make([]tensor.BF16, n))
	case tensor.F16T:
		c.F16 = tensor.Host[tensor.F16](make([]tensor.F16, n))
	}
	return c, nil
}

func (c *PagedCache) checkDims() error {
	switch c.DType {
	case tensor.F32, tensor.BF16T, tensor.F16T:
	case tensor.E4M3T:
		if c.FP8 == nil {
			return argErr("k_cache", ErrDType, "dtype E4M3 without FP8 records (make it with NewFP8PagedCache)")
		}
		if c.NumKVHeads != 1 || c.HeadDim != HeadDim || c.FP8.NumBlocks != c.NumBlocks || c.FP8.PageSize != c.PageSize {
			return argErr("k_cache", ErrShape, "FP8 cache [%d, %d, %d, %d] over records of %d blocks × %d: want [blocks, page, 1, %d] matching its FP8Cache",
				c.NumBlocks, c.PageSize, c.NumKVHeads, c.HeadDim, c.FP8.NumBlocks, c.FP8.PageSize, HeadDim)
		}
	default:
		return argErr("k_cache", ErrDType, "dtype %v, want F32, BF16, F16 or E4M3 (the V3.2 FP8 layout)", c.DType)
	}
	if c.NumBlocks < 0 || c.PageSize <= 0 || c.NumKVHeads <= 0 || c.HeadDim <= 0 {
		return argErr("k_cache", ErrShape, "blocks %d, page size %d, kv heads %d, head dim %d: need blocks ≥ 0 and the rest > 0",
			c.NumBlocks, c.PageSize, c.NumKVHeads, c.HeadDim)
	}
	const maxElems = 1 << 40
	if c.NumBlocks > maxElems/c.PageSize/c.NumKVHeads/c.HeadDim {
		return argErr("k_cache", ErrShape, "%d blocks of %d×%d×%d elements is too large", c.NumBlocks, c.PageSize, c.NumKVHeads, c.HeadDim)
	}
	return nil
}

// Check verifies the dims and that the storage slice selected by DType holds
// exactly NumBlocks·PageSize·NumKVHeads·HeadDim elements.
func (c *PagedCache) Check() error {
	if c == nil {
		return argErr("k_cache", ErrShape, "nil cache")
	}
	if err := c.checkDims(); err != nil {
		return err
	}
	if c.DType == tensor.E4M3T {
		return c.FP8.Check()
	}
	want := c.NumBlocks * c.PageSize * c.NumKVHeads * c.HeadDim
	var got int
	switch c.DType {
	case tensor.F32:
		got = tensor.StorageLen(c.F32)
	case tensor.BF16T:
		got = tensor.StorageLen(c.BF16)
	case tensor.F16T:
		got = tensor.StorageLen(c.F16)
	}
	if got != want {
		return argErr("k_cache", ErrShape, "%v storage holds %d elements, want %d", c.DType, got, want)
	}
	return nil
}

// Offset returns the element offset of row (block, slot, kvHead), the start
// of its HeadDim channels.
func (c *PagedCache) Offset(block, slot, kvHead int) int {
	return ((block*c.PageSize+slot)*c.NumKVHeads + kvHead) * c.HeadDim
}

// SetRow encodes row (HeadDim float32 values, round-to-nearest-even for
// BF16/F16; NaN stays NaN) into (block, slot, kvHead) of host storage. It
// returns an *ArgError wrapping ErrShape if an index is out of range or
// len(row) != HeadDim or c is nil, or the error of Host for device storage.
func (c *PagedCache) SetRow(block, slot, kvHead int, row []float32) error {
	if c == nil {
		return argErr("k_cache", ErrShape, "nil cache")
	}
	if block < 0 || block >= c.NumBlocks || slot < 0 || slot >= c.PageSize || kvHead < 0 || kvHead >= c.NumKVHeads {
		return argErr("k_cache", ErrShape, "row (%d, %d, %d) outside [%d, %d, %d]", block, slot, kvHead, c.NumBlocks, c.PageSize, c.NumKVHeads)
	}
	if len(row) != c.HeadDim {
		return argErr("row", ErrShape, "length %d, want head dim %d", len(row), c.HeadDim)
	}
	if c.DType == tensor.E4M3T && c.FP8 != nil {
		return c.FP8.SetRow(block, slot, row, FP8RecipeV32)
	}
	h, err := c.Host()
	if err != nil {
		return err
	}
	off := c.Offset(block, slot, kvHead)
	switch c.DType {
	case tensor.F32:
		copy(h.F32[off:off+c.HeadDim], row)
	case tensor.BF16T:
		tensor.EncodeBF16(h.BF16[off:off+c.HeadDim], row)
	case tensor.F16T:
		tensor.EncodeF16(h.F16[off:off+c.HeadDim], row)
	}
	return nil
}

// Row decodes row (block, slot, kvHead) into dst[:HeadDim] and returns
// dst[:HeadDim]. It returns an *ArgError wrapping ErrShape if an index is out
// of range, dst is shorter than HeadDim or c is nil, or the error of Host for
// device storage.
func (c *PagedCache) Row(block, slot, kvHead int, dst []float32) ([]float32, error) {
	if c == nil {
		return nil, argErr("k_cache", ErrShape, "nil cache")
	}
	if block < 0 || block >= c.NumBlocks || slot < 0 || slot >= c.PageSize || kvHead < 0 || kvHead >= c.NumKVHeads {
		return nil, argErr("k_cache", ErrShape, "row (%d, %d, %d) outside [%d, %d, %d]", block, slot, kvHead, c.NumBlocks, c.PageSize, c.NumKVHeads)
	}
	if len(dst) < c.HeadDim {
		return nil, argErr("dst", ErrShape, "length %d, want head dim %d", len(dst), c.HeadDim)
	}
	if c.DType == tensor.E4M3T && c.FP8 != nil {
		return c.FP8.Row(block, slot, dst)
	}
	h, err := c.Host()
	if err != nil {
		return nil, err
	}
	return h.row(block, slot, kvHead, dst), nil
}

// row is Row for indices the caller has validated.
func (c *CacheHost) row(block, slot, kvHead int, dst []float32) []float32 {
	off := c.Offset(block, slot, kvHead)
	dst = dst[:c.HeadDim]
	switch c.DType {
	case tensor.F32:
		copy(dst, c.F32[off:off+c.HeadDim])
	case tensor.BF16T:
		tensor.DecodeBF16(dst, c.BF16[off:off+c.HeadDim])
	case tensor.F16T:
		tensor.DecodeF16(dst, c.F16[off:off+c.HeadDim])
	case tensor.E4M3T:
		dequantizeFP8Row(dst, c.fp8.record(block*c.PageSize+slot))
	}
	return dst
}

// Fill sets every element of the cache's host storage to v (encoded in the
// storage dtype), e.g. NaN to poison the padding before writing live rows.
// Errors: the error of Host for device storage (ErrShape for a nil c).
func (c *PagedCache) Fill(v float32) error {
	if c == nil {
		return argErr("k_cache", ErrShape, "nil cache")
	}
	if c.DType == tensor.E4M3T && c.FP8 != nil {
		return c.FP8.fill(v)
	}
	hc, err := c.Host()
	if err != nil {
		return err
	}
	switch c.DType {
	case tensor.F32:
		for i := range hc.F32 {
			hc.F32[i] = v
		}
	case tensor.BF16T:
		b := tensor.BF16FromFloat32(v)
		for i := range hc.BF16 {
			hc.BF16[i] = b
		}
	case tensor.F16T:
		h := tensor.F16FromFloat32(v)
		for i := range hc.F16 {
			hc.F16[i] = h
		}
	}
	return nil
}
