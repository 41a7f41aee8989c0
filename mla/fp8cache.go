package mla

import (
	"encoding/binary"
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// The DeepSeek-V3.2 FP8 KV cache layout (FlashMLA's is_fp8_kvcache format
// for d_qk = 576): each token is one 656-byte record of
//
//	bytes   0–511  the NoPE latent c_kv[0:512] as FP8 E4M3 codes
//	bytes 512–527  four float32 scales, little-endian; scale i covers
//	               channels [128·i, 128·i+128)
//	bytes 528–655  the RoPE part k_pe[0:64] as BF16, little-endian, not
//	               quantized
//
// so that channel c < 512 dequantizes to e4m3(byte c)·scale[c/128] and
// channel 512+r to the BF16 value r. There is one KV head.
const (
	FP8NoPEDim        = KVLoraRank                                 // 512 quantized channels
	FP8ScaleGroup     = 128                                        // channels per scale
	FP8NumScales      = FP8NoPEDim / FP8ScaleGroup                 // 4 scales per token
	FP8RopeDim        = QKRopeHeadDim                              // 64 BF16 channels
	FP8BytesPerToken  = FP8NoPEDim + 4*FP8NumScales + 2*FP8RopeDim // 656
	fp8ScaleOff       = FP8NoPEDim                                 // 512
	fp8RopeOff        = FP8NoPEDim + 4*FP8NumScales                // 528
	fp8MaxE4M3        = 448                                        // largest finite E4M3 magnitude
	fp8AmaxFloor      = 1e-4                                       // act_quant's amax floor
	fp8MaxBytesPerBuf = 1 << 42                                    // sanity bound on a cache's size
)

// FP8Recipe selects how QuantizeFP8Row chooses a tile's scale from its
// absolute maximum amax (over 128 channels). Every recipe keeps
// |x/scale| ≤ 448; codes are round-to-nearest-even E4M3 of x/scale,
// saturated to ±448.
type FP8Recipe int

const (
	// FP8RecipeV32 is DeepSeek-V3.2's act_quant(x, 128, "ue8m0")
	// (inference/kernel.py), the recipe of the model itself and the default:
	// a = max(amax, 1e-4) in float32, t = a·float32(1/448), and the scale
	// is 2^(E−127+[mantissa ≠ 0]) where E and mantissa are the float32 bit
	// fields of t (the product by the rounded reciprocal is kept, it matters
	// at powers of two).
	FP8RecipeV32 FP8Recipe = iota
	// FP8RecipeFlashMLATest is the quantizer of FlashMLA's tests/quant.py:
	// scale = 2^ceil(log2(max(amax/448, 1e-4))) (the floor is on the scale).
	FP8RecipeFlashMLATest
	// FP8RecipeAmax is the plain recipe of FlashMLA's release-era tests:
	// scale = amax/448 in float32 (not a power of two; 0 gives 0 codes and
	// scale 0).
	FP8RecipeAmax
)

// String returns "v32", "flashmla-test" or "amax".
func (r FP8Recipe) String() string {
	switch r {
	case FP8RecipeV32:
		return "v32"
	case FP8RecipeFlashMLATest:
		return "flashmla-test"
	case FP8RecipeAmax:
		return "amax"
	}
	return "FP8Recipe(?)"
}

// Scale returns the scale recipe r gives a 128-channel tile whose absolute
// maximum is amax (see the FP8Recipe constants): for FP8RecipeV32 the
// power of two of DeepSeek-V3.2's act_quant(x, 128, "ue8m0"), which also
// quantizes the lightning indexer's q and k. Codes are then
// E4M3(x/scale).
func (r FP8Recipe) Scale(amax float32) float32 { return r.scale(amax) }

// fp8Scale returns the scale of a tile with absolute maximum amax.
func (r FP8Recipe) scale(amax float32) float32 {
	switch r {
	case FP8RecipeFlashMLATest:
		s := max(float64(amax)/fp8MaxE4M3, fp8AmaxFloor)
		return float32(math.Exp2(math.Ceil(math.Log2(s))))
	case FP8RecipeAmax:
		return amax / fp8MaxE4M3
	default:
		a := max(amax, float32(fp8AmaxFloor))
		t := math.Float32bits(a * float32(1.0/fp8MaxE4M3))
		e := int(t>>23&0xFF) - 127
		if t&0x7FFFFF != 0 {
			e++
		}
		return float32(math.Ldexp(1, e))
	}
}

// QuantizeFP8Row writes the 656-byte V3.2 record of one cache row into
// dst[:FP8BytesPerToken]: row holds HeadDim = 576 float32 values (the
// kv_norm'ed latent c_kv, 512, then the rotated k_pe, 64). The first 512
// are quantized per 128-channel tile with recipe r, the last 64 are rounded
// to BF16 (nearest even). NaN inputs give NaN codes. It returns an *ArgError
// wrapping ErrShape if len(row) != 576 or len(dst) < 656, or ErrUnsupported
// for a recipe that is none of the FP8Recipe constants.
func QuantizeFP8Row(dst []byte, row []float32, r FP8Recipe) error {
	if r < FP8RecipeV32 || r > FP8RecipeAmax {
		return argErr("recipe", ErrUnsupported, "unknown FP8Recipe %d (want FP8RecipeV32, FP8RecipeFlashMLATest or FP8RecipeAmax)", int(r))
	}
	if len(row) != HeadDim {
		return argErr("row", ErrShape, "length %d, want %d (512 NoPE + 64 RoPE)", len(row), HeadDim)
	}
	if len(dst) < FP8BytesPerToken {
		return argErr("dst", ErrShape, "length %d, want at least %d bytes", len(dst), FP8BytesPerToken)
	}
	quantizeFP8Row(dst[:FP8BytesPerToken], row, r)
	return nil
}

func quantizeFP8Row(dst []byte, row []float32, r FP8Recipe) {
	for g := range FP8NumScales {
		tile := row[g*FP8ScaleGroup : (g+1)*FP8ScaleGroup]
		var amax float32
		for _, v := range tile {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := r.scale(amax)
		for i, v := range tile {
			x := v / s
			if s == 0 {
				x = 0
			}
			if v != v {
				x = v
			}
			dst[g*FP8ScaleGroup+i] = byte(tensor.E4M3FromFloat32(x))
		}
		binary.LittleEndian.PutUint32(dst[fp8ScaleOff+4*g:], math.Float32bits(s))
	}
	for i, v := range row[FP8NoPEDim:] {
		binary.LittleEndian.PutUint16(dst[fp8RopeOff+2*i:], uint16(tensor.BF16FromFloat32(v)))
	}
}

// DequantizeFP8Row decodes a 656-byte V3.2 record (src[:656]) into
// dst[:576] in float32 and returns dst[:576]: channel c < 512 is
// e4m3(src[c])·scale[c/128] (exact for power-of-two scales; FlashMLA's SM90
// kernel rounds the scale to BF16 first, which changes nothing for them),
// channel 512+r the BF16 value r. It returns an *ArgError wrapping ErrShape
// if src is shorter than 656 bytes or dst than 576 values.
func DequantizeFP8Row(dst []float32, src []byte) ([]float32, error) {
	if len(src) < FP8BytesPerToken {
		return nil, argErr("src", ErrShape, "length %d, want at least %d bytes", len(src), FP8BytesPerToken)
	}
	if len(dst) < HeadDim {
		return nil, argErr("dst", ErrShape, "length %d, want at least %d", len(dst), HeadDim)
	}
	dequantizeFP8Row(dst, src)
	return dst[:HeadDim], nil
}

func dequantizeFP8Row(dst []float32, src []byte) {
	dst, src = dst[:HeadDim], src[:FP8BytesPerToken]
	for g := range FP8NumScales {
		s := math.Float32frombits(binary.LittleEndian.Uint32(src[fp8ScaleOff+4*g:]))
		codes := src[g*FP8ScaleGroup : (g+1)*FP8ScaleGroup]
		out := dst[g*FP8ScaleGroup : (g+1)*FP8ScaleGroup]
		for i, b := range codes {
			out[i] = tensor.E4M3(b).Float32() * s
		}
	}
	for i := range FP8RopeDim {
		dst[FP8NoPEDim+i] = tensor.BF16(binary.LittleEndian.Uint16(src[fp8RopeOff+2*i:])).Float32()
	}
}

// FP8Cache is a paged KV cache in the V3.2 FP8 format (see FP8BytesPerToken
// for the 656-byte record), mirroring FlashMLA's k_cache [num_blocks,
// page_block_size, 1, 656] uint8 with is_fp8_kvcache=True: Data (host
// memory, tensor.Host, or another tensor.Storage such as a device buffer)
// holds NumBlocks blocks of BlockStride bytes, block b's token slot s starting at
// b·BlockStride + s·656. BlockStride may exceed PageSize·656 (upstream's
// tests pad it; stride(0) is free, stride(1) must be 656); 0 means
// PageSize·656. The cache has one KV head and HeadDim 576: the first 512
// channels are V. Token index t of a sparse index list addresses block
// t/PageSize, slot t%PageSize (index = physical block·page + offset).
//
// This is the cache storage kind for FP8: DecodeFP8 (dense) and SparseDecode
// read it.
type FP8Cache struct {
	NumBlocks   int
	PageSize    int
	BlockStride int
	Data        tensor.Storage[byte]
}

// NewFP8Cache allocates a zeroed FP8 cache of numBlocks blocks of pageSize
// tokens, BlockStride = pageSize·656. It returns an *ArgError wrapping
// ErrShape for a non-positive page size, a negative block count or a cache
// too large to address.
func NewFP8Cache(numBlocks, pageSize int) (*FP8Cache, error) {
	c := &FP8Cache{NumBlocks: numBlocks, PageSize: pageSize}
	if err := c.checkDims(); err != nil {
		return nil, err
	}
	c.Data = tensor.Host[byte](make([]byte, numBlocks*c.stride()))
	return c, nil
}

func (c *FP8Cache) stride() int {
	if c.BlockStride == 0 {
		return c.PageSize * FP8BytesPerToken
	}
	return c.BlockStride
}

func (c *FP8Cache) checkDims() error {
	if c.NumBlocks < 0 || c.PageSize <= 0 || c.BlockStride < 0 {
		return argErr("k_cache", ErrShape, "blocks %d, page size %d, block stride %d: need blocks ≥ 0, page size > 0, stride ≥ 0",
			c.NumBlocks, c.PageSize, c.BlockStride)
	}
	if c.PageSize > fp8MaxBytesPerBuf/FP8BytesPerToken {
		return argErr("k_cache", ErrShape, "page size %d is too large", c.PageSize)
	}
	if c.BlockStride != 0 && c.BlockStride < c.PageSize*FP8BytesPerToken {
		return argErr("k_cache", ErrShape, "block stride %d bytes < page size %d × %d", c.BlockStride, c.PageSize, FP8BytesPerToken)
	}
	if c.NumBlocks > 0 && c.NumBlocks > fp8MaxBytesPerBuf/c.stride() {
		return argErr("k_cache", ErrShape, "%d blocks of %d bytes is too large", c.NumBlocks, c.stride())
	}
	if c.NumBlocks > math.MaxInt32/c.PageSize {
		return argErr("k_cache", ErrShape, "%d blocks of %d tokens: token indices do not fit in int32", c.NumBlocks, c.PageSize)
	}
	return nil
}

// Check verifies the dims and that Data holds NumBlocks·BlockStride bytes
// (the last block may stop right after its last token). It returns an
// *ArgError naming "k_cache" and wrapping ErrShape, or nil.
func (c *FP8Cache) Check() error {
	if c == nil {
		return argErr("k_cache", ErrShape, "nil cache")
	}
	if err := c.checkDims(); err != nil {
		return err
	}
	need := 0
	if c.NumBlocks > 0 {
		need = (c.NumBlocks-1)*c.stride() + c.PageSize*FP8BytesPerToken
	}
	if n := tensor.StorageLen(c.Data); n < need {
		return argErr("k_cache", ErrShape, "%d bytes, want %d blocks of stride %d (at least %d bytes)", n, c.NumBlocks, c.stride(), need)
	}
	return nil
}

// Tokens returns NumBlocks·PageSize, the number of token indices the cache
// addresses.
func (c *FP8Cache) Tokens() int { return c.NumBlocks * c.PageSize }

// Offset returns the byte offset of token slot (block, slot).
func (c *FP8Cache) Offset(block, slot int) int { return block*c.stride() + slot*FP8BytesPerToken }

// fp8Host is an FP8Cache resolved to its host bytes.
type fp8Host struct {
	*FP8Cache
	b []byte
}

// host resolves c.Data to host bytes once (no copy). Errors: an *ArgError
// naming arg and wrapping ErrUnsupported and tensor.ErrNotHost for storage
// the CPU cannot address.
func (c *FP8Cache) host(arg string) (fp8Host, error) {
	b, err := tensor.HostSlice(c.Data)
	if err != nil {
		return fp8Host{}, &ArgError{Arg: arg, Err: ErrUnsupported, Msg: err.Error(), cause: err}
	}
	return fp8Host{c, b}, nil
}

// record returns the 656 bytes of token index t (validated by the caller).
func (h fp8Host) record(t int) []byte {
	off := h.Offset(t/h.PageSize, t%h.PageSize)
	return h.b[off : off+FP8BytesPerToken : off+FP8BytesPerToken]
}

func (c *FP8Cache) checkSlot(block, slot int) error {
	if block < 0 || block >= c.NumBlocks || slot < 0 || slot >= c.PageSize {
		return argErr("k_cache", ErrShape, "slot (%d, %d) outside [%d, %d]", block, slot, c.NumBlocks, c.PageSize)
	}
	if n := tensor.StorageLen(c.Data); c.Offset(block, slot)+FP8BytesPerToken > n {
		return argErr("k_cache", ErrShape, "slot (%d, %d) past the %d bytes of Data", block, slot, n)
	}
	return nil
}

// SetRow quantizes row (576 float32: NoPE 512 then RoPE 64) with recipe r
// into slot (block, slot). Errors: an *ArgError wrapping ErrShape for a slot
// out of range or a row of the wrong length, or ErrUnsupported for an
// unknown recipe or (with tensor.ErrNotHost) for Data the CPU cannot address.
func (c *FP8Cache) SetRow(block, slot int, row []float32, r FP8Recipe) error {
	if err := c.checkSlot(block, slot); err != nil {
		return err
	}
	h, err := c.host("k_cache")
	if err != nil {
		return err
	}
	off := c.Offset(block, slot)
	return QuantizeFP8Row(h.b[off:off+FP8BytesPerToken], row, r)
}

// SetRowBF16 is SetRow for a BF16 row (the model's activations): the row is
// widened to float32 (exactly) and quantized; the RoPE part is stored as
// given.
func (c *FP8Cache) SetRowBF16(block, slot int, row []tensor.BF16, r FP8Recipe) error {
	if len(row) != HeadDim {
		return argErr("row", ErrShape, "length %d, want %d (512 NoPE + 64 RoPE)", len(row), HeadDim)
	}
	f := make([]float32, HeadDim)
	tensor.DecodeBF16(f, row)
	return c.SetRow(block, slot, f, r)
}

// Row dequantizes slot (block, slot) into dst[:576] (see DequantizeFP8Row)
// and returns dst[:576]. Errors: an *ArgError wrapping ErrShape for a slot
// out of range or a dst shorter than 576, or ErrUnsupported (and
// tensor.ErrNotHost) for Data the CPU cannot address.
func (c *FP8Cache) Row(block, slot int, dst []float32) ([]float32, error) {
	if err := c.checkSlot(block, slot); err != nil {
		return nil, err
	}
	h, err := c.host("k_cache")
	if err != nil {
		return nil, err
	}
	off := c.Offset(block, slot)
	return DequantizeFP8Row(dst, h.b[off:off+FP8BytesPerToken])
}

// Poison sets every byte of Data to 0xFF: NaN codes, NaN scales and NaN
// BF16 values, so that a test sees any read of a slot that should not be
// read (upstream's tests fill unused slots with NaN the same way). It
// returns ErrUnsupported (and tensor.ErrNotHost) for Data the CPU cannot
// address.
func (c *FP8Cache) Poison() error {
	h, err := c.host("k_cache")
	if err != nil {
		return err
	}
	for i := range h.b {
		h.b[i] = 0xFF
	}
	return nil
}

// fill is PagedCache.Fill for the FP8 kind: NaN poisons every byte (see
// Poison), any other v quantizes a row of v into every slot.
func (c *FP8Cache) fill(v float32) error {
	if v != v {
		return c.Poison()
	}
	h, err := c.host("k_cache")
	if err != nil {
		return err
	}
	row := make([]float32, HeadDim)
	for i := range row {
		row[i] = v
	}
	rec := make([]byte, FP8BytesPerToken)
	quantizeFP8Row(rec, row, FP8RecipeV32)
	for t := range c.Tokens() {
		copy(h.record(t), rec)
	}
	return nil
}

// Dequantize returns an F32 PagedCache (one KV head, HeadDim 576) holding
// every slot of c dequantized, block for block: the cache the dense float
// backends and the tests compare against.
func (c *FP8Cache) Dequantize() (*PagedCache, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	h, err := c.host("k_cache")
	if err != nil {
		return nil, err
	}
	pc, err := NewPagedCache(tensor.F32, c.NumBlocks, c.PageSize, 1, HeadDim)
	if err != nil {
		return nil, err
	}
	row := make([]float32, HeadDim)
	for t := range c.Tokens() {
		dequantizeFP8Row(row, h.record(t))
		if err := pc.SetRow(t/c.PageSize, t%c.PageSize, 0, row); err != nil {
			return nil, err
		}
	}
	return pc, nil
}
