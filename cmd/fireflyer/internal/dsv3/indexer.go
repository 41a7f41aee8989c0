package dsv3

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// DeepSeek-V3.2's lightning indexer (inference/model.py, class Indexer) as
// the fast path runs it: FP8 projections, float32 activations, the FP8
// indexer cache in DeepGEMM's paged layout, FP8 logits and the top-k that
// feeds sparse MLA.

// IndexerNormEps is k_norm's LayerNorm epsilon (model.py LayerNorm default).
const IndexerNormEps = 1e-6

// IndexerWeights are one layer's lightning-indexer weights as the fast path
// uses them. Names follow the checkpoint (model.layers.{i}.self_attn.indexer.…).
type IndexerWeights struct {
	WQB         *tensor.FP8Matrix // wq_b [index_n_heads·index_head_dim, q_lora_rank], FP8 with 128×128 block scales
	WK          *tensor.FP8Matrix // wk [index_head_dim, hidden], FP8 with 128×128 block scales
	KNormW      []float32         // k_norm.weight [index_head_dim] (LayerNorm)
	KNormB      []float32         // k_norm.bias [index_head_dim]
	WeightsProj []float32         // weights_proj.weight [index_n_heads, hidden] (BF16 in the checkpoint, run in float32 as the corrected model.py does)
}

// IndexerLinear is IndexerWeights dequantized to float32 for the float64
// reference.
type IndexerLinear struct {
	WQB, WK        Linear
	KNormW, KNormB []float32
	WeightsProj    Linear
}

// Dequantized returns iw in the float64 reference's layout.
func (iw *IndexerWeights) Dequantized() (*IndexerLinear, error) {
	d := &IndexerLinear{KNormW: iw.KNormW, KNormB: iw.KNormB}
	for _, p := range []struct {
		dst *Linear
		src *tensor.FP8Matrix
	}{{&d.WQB, iw.WQB}, {&d.WK, iw.WK}} {
		v, err := tensor.Dequantize(p.src)
		if err != nil {
			return nil, err
		}
		*p.dst = Linear{Out: p.src.Rows, In: p.src.K, W: v}
	}
	d.WeightsProj = Linear{Out: len(iw.WeightsProj) / max(1, iw.WK.K), In: iw.WK.K, W: iw.WeightsProj}
	return d, nil
}

// LayerNorm returns (x − mean)/sqrt(var + eps) ⊙ w + b in float64, with the
// biased variance over x (torch.nn.functional.layer_norm, the indexer's
// k_norm).
func LayerNorm(x []float64, w, b []float32, eps float64) []float64 {
	n := float64(len(x))
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= n
	var vr float64
	for _, v := range x {
		vr += (v - mean) * (v - mean)
	}
	r := 1 / math.Sqrt(vr/n+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v-mean)*r*float64(w[i]) + float64(b[i])
	}
	return out
}

// Hadamard rotates x in place by the orthonormal Sylvester–Hadamard matrix,
// x ← x·H/√n with H[i][j] = (−1)^popcount(i&j) and n = len(x): model.py's
// rotate_activation (fast_hadamard_transform.hadamard_transform(x,
// scale=n^−0.5)), applied to the indexer's q (per head) and k before FP8
// quantization to spread outliers. It leaves dot products unchanged in exact
// arithmetic. It returns an error wrapping ErrConfig unless n is a power of
// two.
func Hadamard(x []float64) error {
	n := len(x)
	if n == 0 || n&(n-1) != 0 {
		return fmt.Errorf("%w: Hadamard rotation of %d channels: want a power of two", ErrConfig, n)
	}
	for h := 1; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	s := 1 / math.Sqrt(float64(n))
	for i := range x {
		x[i] *= s
	}
	return nil
}

// ActQuant quantizes one act_quant block x (float32) as DeepSeek-V3.2's
// act_quant(x, 128, "ue8m0") (inference/kernel.py): scale =
// mla.FP8RecipeV32.Scale(max|x|), a power of two, and codes[i] =
// E4M3(x[i]/scale) (round to nearest even). It returns the scale; codes
// must hold len(x) entries.
func ActQuant(codes []tensor.E4M3, x []float32) float32 {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	s := mla.FP8RecipeV32.Scale(amax)
	for i, v := range x {
		codes[i] = tensor.E4M3FromFloat32(v / s)
	}
	return s
}

// IndexerCache is the lightning indexer's key cache in DeepGEMM's paged
// layout (fp8_paged_mqa_logits' fused_kv_cache [num_blocks, block_kv, 1,
// d+4] uint8): block p holds PageSize FP8 E4M3 key rows of HeadDim bytes,
// row-major, followed by PageSize float32 scales (little-endian), so token
// t of block p has its codes at p·BlockStride() + t·HeadDim and its scale at
// p·BlockStride() + PageSize·HeadDim + 4t. It is 132 bytes per token for
// HeadDim 128.
type IndexerCache struct {
	NumBlocks, PageSize, HeadDim int
	Data                         []byte
}

// NewIndexerCache allocates a zeroed indexer cache. Errors wrap ErrConfig
// for a non-positive dim or page size, a negative block count, or a size
// over 2^40 bytes.
func NewIndexerCache(numBlocks, pageSize, headDim int) (*IndexerCache, error) {
	if numBlocks < 0 || pageSize <= 0 || headDim <= 0 || numBlocks > 1<<40/pageSize/(headDim+4) {
		return nil, fmt.Errorf("%w: indexer cache [%d blocks, %d tokens, %d dims] out of range", ErrConfig, numBlocks, pageSize, headDim)
	}
	c := &IndexerCache{NumBlocks: numBlocks, PageSize: pageSize, HeadDim: headDim}
	c.Data = make([]byte, numBlocks*c.BlockStride())
	return c, nil
}

// BlockStride returns the bytes of one block, PageSize·(HeadDim+4).
func (c *IndexerCache) BlockStride() int { return c.PageSize * (c.HeadDim + 4) }

func (c *IndexerCache) check(block, slot int) error {
	if block < 0 || block >= c.NumBlocks || slot < 0 || slot >= c.PageSize {
		return fmt.Errorf("%w: indexer cache slot (%d, %d) outside [%d, %d]", ErrConfig, block, slot, c.NumBlocks, c.PageSize)
	}
	return nil
}

// Set stores one token's key codes (HeadDim) and scale at (block, slot).
func (c *IndexerCache) Set(block, slot int, codes []tensor.E4M3, scale float32) error {
	if err := c.check(block, slot); err != nil {
		return err
	}
	if len(codes) != c.HeadDim {
		return fmt.Errorf("%w: indexer key of %d codes, want %d", ErrConfig, len(codes), c.HeadDim)
	}
	base := block * c.BlockStride()
	row := c.Data[base+slot*c.HeadDim:][:c.HeadDim]
	for i, v := range codes {
		row[i] = byte(v)
	}
	sc := c.Data[base+c.PageSize*c.HeadDim+4*slot:][:4]
	u := math.Float32bits(scale)
	sc[0], sc[1], sc[2], sc[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	return nil
}

// Get returns the codes (a view of Data) and scale stored at (block, slot).
func (c *IndexerCache) Get(block, slot int) ([]byte, float32, error) {
	if err := c.check(block, slot); err != nil {
		return nil, 0, err
	}
	base := block * c.BlockStride()
	sc := c.Data[base+c.PageSize*c.HeadDim+4*slot:][:4]
	s := math.Float32frombits(uint32(sc[0]) | uint32(sc[1])<<8 | uint32(sc[2])<<16 | uint32(sc[3])<<24)
	return c.Data[base+slot*c.HeadDim:][:c.HeadDim], s, nil
}

// indexerRope returns the indexer's rotary frequencies: MLA's YaRN-corrected
// ones (the same freqs_cis), applied in the non-interleaved layout.
func indexerRope(c Config) []float64 { return RopeInvFreq(c) }

// rotateQuant finishes one indexer vector v (index_head_dim, float64, in
// place): non-interleaved RoPE on the first qk_rope_head_dim channels at
// pos, the Hadamard rotation, float32 rounding and act_quant into codes.
// It returns the scale.
func rotateQuant(c Config, inv []float64, v []float64, pos int, codes []tensor.E4M3) (float32, error) {
	mla.RotateHalves(v[:c.QKRopeHeadDim], inv, pos)
	if err := Hadamard(v); err != nil {
		return 0, err
	}
	var buf [256]float32
	f := buf[:0]
	if len(v) > len(buf) {
		f = make([]float32, 0, len(v))
	}
	for _, x := range v {
		f = append(f, float32(x))
	}
	return ActQuant(codes, f), nil
}

// IndexerKeys computes the lightning indexer's keys of the normalised,
// per-token quantized hidden states hq [n, hidden] (NormQuant) at positions
// pos(i) and stores them into cache at slot(i) (block, offset), as
// model.py's Indexer.forward fills k_cache and k_scale_cache as tokens are
// appended: wk (FP8 GEMM), k_norm (LayerNorm), non-interleaved RoPE on the
// first qk_rope_head_dim channels, the Hadamard rotation, act_quant (one
// UE8M0 scale per token). flops accumulates the GEMM's.
func IndexerKeys(ctx context.Context, be gemm.Backend, cfg Config, iw *IndexerWeights, hq *tensor.FP8Matrix,
	pos func(i int) int, cache *IndexerCache, slot func(i int) (int, int), flops *int64) error {
	k, err := LinearQ(ctx, be, hq, iw.WK, flops)
	if err != nil {
		return err
	}
	d := cfg.IndexHeadDim
	inv := indexerRope(cfg)
	codes := make([]tensor.E4M3, d)
	v := make([]float64, d)
	for i := 0; i < hq.Rows; i++ {
		for j, x := range k[i*d : (i+1)*d] {
			v[j] = float64(x)
		}
		v = LayerNorm(v, iw.KNormW, iw.KNormB, IndexerNormEps)
		s, err := rotateQuant(cfg, inv, v, pos(i), codes)
		if err != nil {
			return err
		}
		blk, off := slot(i)
		if err := cache.Set(blk, off, codes, s); err != nil {
			return err
		}
	}
	return nil
}

// IndexerQueries computes the indexer's queries of a decode batch: qr
// [B, q_lora_rank] is MLA's q_a_layernorm output (the shared query latent),
// h [B, hidden] the input_layernorm output, pos(b) the token's position. It
// returns q [B, index_n_heads, index_head_dim] E4M3 codes (wq_b, RoPE,
// Hadamard, act_quant per head, no scale: DeepGEMM's convention) and
// weights [B, index_n_heads] float32 carrying every scalar:
// weights_proj(h)·index_n_heads^−0.5·q_scale·index_head_dim^−0.5.
func IndexerQueries(ctx context.Context, be gemm.Backend, cfg Config, iw *IndexerWeights, qr, h []float32, B int,
	pos func(b int) int, flops *int64) ([]tensor.E4M3, []float32, error) {
	H, d, hid := cfg.IndexNHeads, cfg.IndexHeadDim, cfg.HiddenSize
	if len(iw.WeightsProj) != H*hid || len(h) != B*hid {
		return nil, nil, fmt.Errorf("%w: weights_proj has %d values, want [%d, %d]", ErrConfig, len(iw.WeightsProj), H, hid)
	}
	q, err := LinearFP8(ctx, be, qr, B, iw.WQB, flops)
	if err != nil {
		return nil, nil, err
	}
	inv := indexerRope(cfg)
	codes := make([]tensor.E4M3, B*H*d)
	weights := make([]float32, B*H)
	v := make([]float64, d)
	hs := 1 / math.Sqrt(float64(H))
	ss := cfg.IndexerSoftmaxScale()
	for b := 0; b < B; b++ {
		hb := h[b*hid : (b+1)*hid]
		for hd := 0; hd < H; hd++ {
			for j, x := range q[(b*H+hd)*d : (b*H+hd+1)*d] {
				v[j] = float64(x)
			}
			qs, err := rotateQuant(cfg, inv, v, pos(b), codes[(b*H+hd)*d:(b*H+hd+1)*d])
			if err != nil {
				return nil, nil, err
			}
			var w float32
			for i, x := range iw.WeightsProj[hd*hid : (hd+1)*hid] {
				w += x * hb[i]
			}
			weights[b*H+hd] = float32(float64(w) * hs * float64(qs) * ss)
		}
	}
	*flops += 2 * int64(B*H*hid)
	return codes, weights, nil
}

// IndexerLogits computes the indexer's logits of a decode batch (next_n = 1)
// over the paged indexer cache, as DeepGEMM's fp8_paged_mqa_logits with
// clean_logits: for request b and key s < contextLens[b] (read through
// blockTable[b][s/PageSize]),
//
//	logits[b, s] = k_scale[s] · Σ_h weights[b, h] · max(0, Σ_c q[b, h, c]·k[s, c])
//
// over the FP8 codes with float32 accumulation, and −Inf for contextLens[b]
// ≤ s < maxLen. q is [B, H, HeadDim] (IndexerQueries), weights [B, H]. It
// returns logits [B, maxLen] and the FLOPs.
func IndexerLogits(q []tensor.E4M3, weights []float32, B, H int, cache *IndexerCache, blockTable [][]int32, contextLens []int32, maxLen int) ([]float32, int64, error) {
	d := cache.HeadDim
	if len(q) != B*H*d || len(weights) != B*H || len(blockTable) != B || len(contextLens) != B {
		return nil, 0, fmt.Errorf("%w: indexer logits: q %d, weights %d, block table %d, context_lens %d for B=%d, H=%d, d=%d",
			ErrConfig, len(q), len(weights), len(blockTable), len(contextLens), B, H, d)
	}
	qf := make([]float32, len(q))
	for i, c := range q {
		qf[i] = c.Float32()
	}
	var dec [256]float32
	out := make([]float32, B*maxLen)
	var flops int64
	for b := 0; b < B; b++ {
		n := int(contextLens[b])
		if n < 0 || n > maxLen {
			return nil, 0, fmt.Errorf("%w: context_lens[%d] = %d outside [0, %d]", ErrConfig, b, n, maxLen)
		}
		row := out[b*maxLen : (b+1)*maxLen]
		for s := 0; s < n; s++ {
			p := s / cache.PageSize
			if p >= len(blockTable[b]) {
				return nil, 0, fmt.Errorf("%w: block_table[%d] has %d blocks, key %d needs %d", ErrConfig, b, len(blockTable[b]), s, p+1)
			}
			kc, ks, err := cache.Get(int(blockTable[b][p]), s%cache.PageSize)
			if err != nil {
				return nil, 0, err
			}
			k := dec[:d]
			for i, c := range kc {
				k[i] = tensor.E4M3(c).Float32()
			}
			var acc float32
			for hd := 0; hd < H; hd++ {
				qh := qf[(b*H+hd)*d : (b*H+hd+1)*d]
				var dot float32
				for i, x := range qh {
					dot += x * k[i]
				}
				acc += weights[b*H+hd] * max(dot, 0)
			}
			row[s] = ks * acc
		}
		for s := n; s < maxLen; s++ {
			row[s] = float32(math.Inf(-1))
		}
		flops += 2 * int64(n) * int64(H) * int64(d+1)
	}
	return out, flops, nil
}

// TopK writes into dst (len k) the positions of the k largest logits, in
// order of descending logit; ties go to the lower position. Only logits
// above −Inf are candidates (NaN never is); when fewer than k are, the rest
// of dst is −1, FlashMLA's "no token". It is the indexer's
// index_score.topk(min(index_topk, end_pos)) with a written-down tie rule.
func TopK(logits []float32, dst []int32) {
	cand := make([]int32, 0, len(logits))
	for i, v := range logits {
		if v > float32(math.Inf(-1)) {
			cand = append(cand, int32(i))
		}
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if c := cmp.Compare(logits[b], logits[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	n := copy(dst, cand)
	for i := n; i < len(dst); i++ {
		dst[i] = -1
	}
}
