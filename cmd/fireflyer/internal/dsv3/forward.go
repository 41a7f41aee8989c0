package dsv3

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The layer's forward pass as the fast path runs it: FP8 GEMMs through a
// gemm.Backend on float32 activations quantized per token, the absorbed MLA
// decode through an mla.Backend, and the router; the float64 Ref checks it.

// RMSNormRows applies RMSNorm with weight w to every row of x [rows, n] in
// place (float32 data, float64 sums).
func RMSNormRows(x []float32, n int, w []float32, eps float64) {
	for r := 0; r+n <= len(x); r += n {
		row := x[r : r+n]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		s := 1 / math.Sqrt(ss/float64(n)+eps)
		for i, v := range row {
			row[i] = float32(float64(v) * s * float64(w[i]))
		}
	}
}

// Rope32 rotates adjacent pairs of x at position pos in float32 storage:
// mla.RotatePairs on a float64 copy, rounded back once.
func Rope32(x []float32, invFreq []float64, pos int) {
	var buf [128]float64
	t := buf[:0]
	if len(x) > len(buf) {
		t = make([]float64, 0, len(x))
	}
	for _, v := range x {
		t = append(t, float64(v))
	}
	mla.RotatePairs(t, invFreq, pos)
	for i, v := range t {
		x[i] = float32(v)
	}
}

// LinearFP8 computes x [rows, K] · Wᵀ in FP8: x is quantized per token (1×128
// float32 scales) and multiplied by the block-scaled weight; the result is
// float32 [rows, W.Rows]. flops accumulates 2·rows·N·K.
func LinearFP8(ctx context.Context, be gemm.Backend, x []float32, rows int, w *tensor.FP8Matrix, flops *int64) ([]float32, error) {
	a, err := tensor.QuantizePerToken(x, rows, w.K, tensor.QuantOptions{})
	if err != nil {
		return nil, err
	}
	return LinearQ(ctx, be, a, w, flops)
}

// LinearQ is LinearFP8 for an input already quantized per token, so that one
// quantization can feed several projections of the same activations.
func LinearQ(ctx context.Context, be gemm.Backend, a *tensor.FP8Matrix, w *tensor.FP8Matrix, flops *int64) ([]float32, error) {
	rows := a.Rows
	out := make([]float32, rows*w.Rows)
	if err := gemm.FP8GemmNT(ctx, be, a, w, &gemm.Out{Rows: rows, Cols: w.Rows, F32: tensor.HostOf(out)}); err != nil {
		return nil, err
	}
	*flops += 2 * int64(rows) * int64(w.Rows) * int64(w.K)
	return out, nil
}

// AbsorbKVB returns kv_b_proj [heads·(nope+v), 512] (dequantized) as mla's
// up-projections W_UK and W_UV per head, for the weight absorption of the
// decode query (mla.AbsorbQ) and of its output (mla.UnabsorbOut).
func AbsorbKVB(cfg Config, kvb *tensor.FP8Matrix) (*mla.KVB, error) {
	w, err := tensor.Dequantize(kvb)
	if err != nil {
		return nil, err
	}
	k := &mla.KVB{Heads: cfg.NumAttentionHeads, NopeDim: cfg.QKNopeHeadDim, VDim: cfg.VHeadDim, Rank: cfg.KVLoraRank,
		W: make([]float64, len(w))}
	for i, v := range w {
		k.W[i] = float64(v)
	}
	if err := k.Check(); err != nil {
		return nil, fmt.Errorf("dsv3: kv_b_proj: %w", err)
	}
	return k, nil
}

// NormQuant applies input_layernorm to hidden states x [n, hidden] (a copy)
// and quantizes the result per token: the operand of kv_a_proj_with_mqa and
// q_a_proj alike.
func NormQuant(cfg Config, w *Weights, x []float32, n int) (*tensor.FP8Matrix, error) {
	h := append([]float32(nil), x...)
	RMSNormRows(h, cfg.HiddenSize, w.InputNorm, cfg.RMSNormEps)
	return tensor.QuantizePerToken(h, n, cfg.HiddenSize, tensor.QuantOptions{})
}

// KVRows turns normalised, quantized hidden states hq [n, hidden] (from
// normQuant) at the given positions into MLA cache rows and writes them into
// the cache: kv_a_proj_with_mqa (FP8), kv_a_layernorm on the 512 latent
// channels, RoPE on the 64 rope channels. slot(i) gives the (block, offset)
// of row i.
func KVRows(ctx context.Context, be gemm.Backend, cfg Config, w *Weights, hq *tensor.FP8Matrix, pos func(i int) int,
	cache *mla.PagedCache, slot func(i int) (int, int), flops *int64) error {
	n := hq.Rows
	kva, err := LinearQ(ctx, be, hq, w.KVA, flops)
	if err != nil {
		return err
	}
	inv := RopeInvFreq(cfg)
	d := cfg.KVLoraRank + cfg.QKRopeHeadDim
	for i := 0; i < n; i++ {
		row := kva[i*d : (i+1)*d]
		RMSNormRows(row[:cfg.KVLoraRank], cfg.KVLoraRank, w.KVANorm, cfg.RMSNormEps)
		Rope32(row[cfg.KVLoraRank:], inv, pos(i))
		blk, off := slot(i)
		if err := cache.SetRow(blk, off, 0, row); err != nil {
			return err
		}
	}
	return nil
}

// AttentionPhase names the three timed phases of Attention.
type AttentionPhase int

// The phases of Attention, in order.
const (
	// PhaseProjections: input_layernorm, the new tokens' cache rows
	// (kv_a_proj_with_mqa), q_a_proj, q_b_proj, RoPE and the absorption
	// of q_nope (FP8 GEMMs).
	PhaseProjections AttentionPhase = iota
	// PhaseDecode: the absorbed MLA decode over the paged cache.
	PhaseDecode
	// PhaseOutput: the un-absorption (W_UV) and o_proj (FP8 GEMM).
	PhaseOutput
)

// Attention runs the absorbed MLA decode step for a batch: x [B, hidden]
// are the new tokens' hidden states, the cache holds each sequence's prefix
// (seqlens[b] tokens, block table bt). It appends the new tokens' rows to
// the cache, increments seqlens and returns o_proj's output [B, hidden]. It
// reports each of its three phases to phase (time, FLOPs, bytes moved); an
// error phase returns stops the step.
func Attention(ctx context.Context, be gemm.Backend, mbe mla.Backend, cfg Config, w *Weights, ab *mla.KVB,
	x []float32, cache *mla.PagedCache, bt [][]int32, seqlens []int32, phase func(p AttentionPhase, d time.Duration, flops, bytes int64) error) ([]float32, error) {
	B, heads := len(seqlens), cfg.NumAttentionHeads
	rope, lat := cfg.QKRopeHeadDim, cfg.KVLoraRank
	var flops int64
	t := time.Now()
	pr, err := Project(ctx, be, cfg, w, ab, x, cache, bt, seqlens, &flops)
	if err != nil {
		return nil, err
	}
	if err := phase(PhaseProjections, time.Since(t), flops, 0); err != nil {
		return nil, err
	}

	for b := range seqlens {
		seqlens[b]++
	}
	t = time.Now()
	out, _, err := mla.Decode(ctx, mbe, mla.Query{Data: pr.Q, B: B, SQ: 1, HQ: heads}, cache, bt, seqlens,
		&mla.Options{Scale: float32(cfg.SoftmaxScale())})
	if err != nil {
		return nil, fmt.Errorf("mla decode: %w", err)
	}
	var sk int64
	for _, l := range seqlens {
		sk += int64(l)
	}
	mlaBytes := (sk*int64(lat+rope) + int64(B*heads*(lat+rope+lat))) * int64(cache.DType.Size())
	if err := phase(PhaseDecode, time.Since(t), 2*int64(heads)*sk*int64(lat+rope+lat), mlaBytes); err != nil {
		return nil, err
	}

	t = time.Now()
	flops = 0
	attn, err := OutputProj(ctx, be, cfg, w, ab, out, B, &flops)
	if err != nil {
		return nil, err
	}
	if err := phase(PhaseOutput, time.Since(t), flops, 0); err != nil {
		return nil, err
	}
	return attn, nil
}

// Projected is a decode batch after the attention's projections.
type Projected struct {
	H  []float32         // input_layernorm output [B, hidden]
	HQ *tensor.FP8Matrix // H quantized per token (1×128 scales)
	QR []float32         // q_a_layernorm output [B, q_lora_rank], the query latent MLA and the indexer share
	Q  []float32         // absorbed queries [B, heads, 576]: W_UKᵀ·q_nope (512) ; roped q_pe (64)
}

// Project runs the projections of a decode batch: input_layernorm and
// per-token quantization of x [B, hidden], the new tokens' cache rows
// written at position seqlens[b] (KVRows, through block table bt),
// q_a_proj, q_a_layernorm, q_b_proj, RoPE and the absorption of q_nope
// (FP8 GEMMs). It does not change seqlens; flops accumulates.
func Project(ctx context.Context, be gemm.Backend, cfg Config, w *Weights, ab *mla.KVB,
	x []float32, cache *mla.PagedCache, bt [][]int32, seqlens []int32, flops *int64) (*Projected, error) {
	B, heads := len(seqlens), cfg.NumAttentionHeads
	nope, rope, lat := cfg.QKNopeHeadDim, cfg.QKRopeHeadDim, cfg.KVLoraRank
	// input_layernorm and per-token quantization once, for both projections
	h := append([]float32(nil), x...)
	RMSNormRows(h, cfg.HiddenSize, w.InputNorm, cfg.RMSNormEps)
	hq, err := tensor.QuantizePerToken(h, B, cfg.HiddenSize, tensor.QuantOptions{})
	if err != nil {
		return nil, err
	}
	// the new tokens' cache rows, at position seqlens[b]
	err = KVRows(ctx, be, cfg, w, hq, func(i int) int { return int(seqlens[i]) }, cache,
		func(i int) (int, int) { p := int(seqlens[i]); return int(bt[i][p/cache.PageSize]), p % cache.PageSize }, flops)
	if err != nil {
		return nil, err
	}
	qa, err := LinearQ(ctx, be, hq, w.QA, flops)
	if err != nil {
		return nil, err
	}
	RMSNormRows(qa, cfg.QLoraRank, w.QANorm, cfg.RMSNormEps)
	q, err := LinearFP8(ctx, be, qa, B, w.QB, flops)
	if err != nil {
		return nil, err
	}
	// absorb: q_lat = W_UKᵀ·q_nope (512) ; q_pe roped (64)
	inv := RopeInvFreq(cfg)
	qNope := make([]float64, B*heads*nope)
	qPe := make([]float64, B*heads*rope)
	for b := 0; b < B; b++ {
		for hd := 0; hd < heads; hd++ {
			qh := q[(b*heads+hd)*(nope+rope) : (b*heads+hd+1)*(nope+rope)]
			for i, v := range qh[:nope] {
				qNope[(b*heads+hd)*nope+i] = float64(v)
			}
			pe := qPe[(b*heads+hd)*rope : (b*heads+hd+1)*rope]
			for i, v := range qh[nope:] {
				pe[i] = float64(v)
			}
			mla.RotatePairs(pe, inv, int(seqlens[b]))
		}
	}
	qa576, err := mla.AbsorbQ(ab, qNope, qPe, rope)
	if err != nil {
		return nil, err
	}
	*flops += 2 * int64(B*heads*nope*lat)
	return &Projected{H: h, HQ: hq, QR: qa, Q: qa576}, nil
}

// OutputProj un-absorbs the decode output out [B, heads, 512] (W_UV, in
// float64) and runs o_proj (FP8 GEMM), returning [B, hidden]; flops
// accumulates.
func OutputProj(ctx context.Context, be gemm.Backend, cfg Config, w *Weights, ab *mla.KVB, out []float32, B int, flops *int64) ([]float32, error) {
	o64, err := mla.UnabsorbOut(ab, out)
	if err != nil {
		return nil, err
	}
	o := make([]float32, len(o64))
	for i, v := range o64 {
		o[i] = float32(v)
	}
	*flops += 2 * int64(B*cfg.NumAttentionHeads*cfg.VHeadDim*cfg.KVLoraRank)
	return LinearFP8(ctx, be, o, B, w.O, flops)
}

// RouteBatch runs the router on h2 [B, hidden] (post_attention_layernorm
// output): BF16 logits GEMM, sigmoid, noaux_tc selection. It returns
// topkIdx [B, K] (logical experts), weights [B, K] and scores [B, E].
func RouteBatch(ctx context.Context, be gemm.Backend, cfg Config, w *Weights, h2 []float32, B int) ([]int32, []float32, []float32, int64, error) {
	hb := make([]tensor.BF16, len(h2))
	tensor.EncodeBF16(hb, h2)
	E, K := cfg.NRoutedExperts, cfg.NumExpertsPerTok
	logits := make([]float32, B*E)
	if err := gemm.BF16GemmNT(ctx, be, &gemm.BF16Matrix{Rows: B, K: cfg.HiddenSize, Data: tensor.HostOf(hb)}, w.Gate, &gemm.Out{Rows: B, Cols: E, F32: tensor.HostOf(logits)}); err != nil {
		return nil, nil, nil, 0, err
	}
	idx := make([]int32, B*K)
	wts := make([]float32, B*K)
	for i := range logits {
		logits[i] = Sigmoid(logits[i])
	}
	for b := 0; b < B; b++ {
		if err := Route(cfg, logits[b*E:(b+1)*E], w.Bias, idx[b*K:(b+1)*K], wts[b*K:(b+1)*K]); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	return idx, wts, logits, 2 * int64(B*E*cfg.HiddenSize), nil
}

// SwiGLU computes SiLU(g)⊙u for rows of gu [rows, 2·inter] (gate then up)
// into out [rows, inter].
func SwiGLU(gu []float32, rows, inter int, out []float32) {
	for r := 0; r < rows; r++ {
		g := gu[r*2*inter : r*2*inter+inter]
		u := gu[r*2*inter+inter : (r+1)*2*inter]
		o := out[r*inter : (r+1)*inter]
		for i := range o {
			x := float64(g[i])
			o[i] = float32(x / (1 + math.Exp(-x)) * float64(u[i]))
		}
	}
}

// FuseGateUp stacks gate [inter, K] over up [inter, K] into one [2·inter, K]
// FP8 operand (their 128-row scale blocks stay intact when inter % 128 ==
// 0, which Config.Scaled guarantees).
func FuseGateUp(g, u *tensor.FP8Matrix) (*tensor.FP8Matrix, error) {
	if g.Rows%128 != 0 {
		return nil, fmt.Errorf("dsv3: moe_intermediate_size %d is not a multiple of 128", g.Rows)
	}
	gu, err := tensor.Stack(g, u)
	if err != nil {
		return nil, err
	}
	return gu.Regroup(1)
}

// MLP runs one dense SwiGLU MLP (the shared expert) on x [rows, hidden] in
// FP8: fused gate/up GEMM, SiLU⊙up, per-token quantization, down GEMM.
func MLP(ctx context.Context, be gemm.Backend, gu, down *tensor.FP8Matrix, x []float32, rows int, flops *int64) ([]float32, error) {
	g, err := LinearFP8(ctx, be, x, rows, gu, flops)
	if err != nil {
		return nil, err
	}
	inter := gu.Rows / 2
	act := make([]float32, rows*inter)
	SwiGLU(g, rows, inter, act)
	return LinearFP8(ctx, be, act, rows, down, flops)
}
