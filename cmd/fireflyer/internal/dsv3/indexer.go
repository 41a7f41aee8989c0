package dsv3

import (
	"context"
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// DeepSeek-V3.2's lightning indexer (inference/model.py, class Indexer) as
// the fast path runs it: FP8 projections, float32 activations, the FP8
// indexer cache in DeepGEMM's paged layout (gemm.IndexerCache) and FP8
// logits (gemm.PagedMQALogits); mla.TopKIndices then picks the keys that
// feed sparse MLA.

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
	pos func(i int) int, cache *gemm.IndexerCache, slot func(i int) (int, int), flops *int64) error {
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
		if err := cache.SetToken(blk, off, codes, s); err != nil {
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

// IndexerLogits computes the indexer's logits of a decode batch (next_n =
// 1) over the paged indexer cache on be (gemm.PagedMQALogits, DeepGEMM's
// fp8_paged_mqa_logits with clean_logits): for request b and key s <
// contextLens[b] (read through blockTable[b][s/BlockKV]),
//
//	logits[b, s] = k_scale[s] · Σ_h weights[b, h] · max(0, Σ_c q[b, h, c]·k[s, c])
//
// and −Inf for contextLens[b] ≤ s < maxLen. q is [B, H, HeadDim]
// (IndexerQueries), weights [B, H]. It returns logits [B, maxLen] and the
// FLOPs. be must implement gemm.IndexerBackend.
func IndexerLogits(ctx context.Context, be gemm.Backend, q []tensor.E4M3, weights []float32, B, H int, cache *gemm.IndexerCache,
	blockTable [][]int32, contextLens []int32, maxLen int) ([]float32, int64, error) {
	table, maxBlocks := gemm.FlattenBlockTable(blockTable)
	in := &gemm.PagedMQALogitsInput{Q: q, B: B, NextN: 1, Heads: H, Cache: cache, Weights: weights,
		ContextLens: contextLens, BlockTable: table, MaxBlocks: maxBlocks, MaxContextLen: maxLen}
	out := make([]float32, B*maxLen)
	if err := gemm.PagedMQALogits(ctx, be, in, out, true); err != nil {
		return nil, 0, err
	}
	var flops int64
	for _, n := range contextLens {
		flops += 2 * int64(n) * int64(H) * int64(cache.HeadDim+1)
	}
	return out, flops, nil
}
