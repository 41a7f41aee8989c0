package dsv3

import (
	"math"

	"github.com/fireflyer-go/fireflyer/mla"
)

// Linear is one linear layer's weight, dequantized to float32, row-major
// [Out][In] (PyTorch's nn.Linear layout: y = W·x).
type Linear struct {
	Out, In int
	W       []float32 // [Out*In]
}

// Expert is one SwiGLU MLP: Down·(SiLU(Gate·x) ⊙ (Up·x)).
type Expert struct {
	Gate, Up Linear // [moe_intermediate_size][hidden_size]
	Down     Linear // [hidden_size][moe_intermediate_size]
}

// LayerWeights are one MoE decoder layer's weights (DeepSeek-V3 layer
// ≥ first_k_dense_replace), dequantized to float32. Names follow the
// checkpoint (model.layers.{i}.…).
type LayerWeights struct {
	InputNorm []float32      // input_layernorm.weight [hidden]
	QA        Linear         // self_attn.q_a_proj [q_lora_rank][hidden]
	QANorm    []float32      // self_attn.q_a_layernorm.weight [q_lora_rank]
	QB        Linear         // self_attn.q_b_proj [heads·192][q_lora_rank]
	KVA       Linear         // self_attn.kv_a_proj_with_mqa [576][hidden]
	KVANorm   []float32      // self_attn.kv_a_layernorm.weight [512]
	KVB       Linear         // self_attn.kv_b_proj [heads·(128+128)][512]
	O         Linear         // self_attn.o_proj [hidden][heads·128]
	PostNorm  []float32      // post_attention_layernorm.weight [hidden]
	Gate      Linear         // mlp.gate [n_routed_experts][hidden] (router)
	Bias      []float32      // mlp.gate.e_score_correction_bias [n_routed_experts]
	Experts   []Expert       // mlp.experts.{j}
	Shared    Expert         // mlp.shared_experts (width moe_intermediate_size·n_shared_experts)
	Indexer   *IndexerLinear // self_attn.indexer (DeepSeek-V3.2); nil for DeepSeek-V3
}

// RMSNorm returns x / sqrt(mean(x²) + eps) ⊙ w in float64.
func RMSNorm(x []float64, w []float32, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * r * float64(w[i])
	}
	return out
}

// RopeInvFreq returns the rotary inverse frequencies for the rope head dim
// d (64 in DeepSeek-V3): θ^(−2i/d), i < d/2 (mla.RoPEFrequencies), with
// YaRN's correction when
// rope_scaling has factor > 1, as DeepSeek-V3's inference/model.py
// precompute_freqs_cis applies it whenever the context exceeds
// original_max_position_embeddings (the deployment setting, the same one
// under which SoftmaxScale's mscale² applies): dims whose wavelength fits
// beta_fast rotations in the original context keep θ^(−2i/d), dims with
// fewer than beta_slow rotations are divided by factor, and a linear ramp
// over the dims in between blends the two.
func RopeInvFreq(c Config) []float64 {
	d := c.QKRopeHeadDim
	f := mla.RoPEFrequencies(d, c.RopeTheta)
	y := c.RopeScaling
	if y == nil || y.Factor <= 1 || y.OriginalMaxPositionEmbeddings <= 0 || d < 2 {
		return f
	}
	fast, slow := y.BetaFast, y.BetaSlow
	if fast <= 0 {
		fast = 32
	}
	if slow <= 0 {
		slow = 1
	}
	corrDim := func(rotations float64) float64 {
		return float64(d) * math.Log(float64(y.OriginalMaxPositionEmbeddings)/(rotations*2*math.Pi)) / (2 * math.Log(c.RopeTheta))
	}
	lo := max(math.Floor(corrDim(fast)), 0)
	hi := min(math.Ceil(corrDim(slow)), float64(d-1))
	if hi == lo {
		hi += 0.001
	}
	for i := range f {
		ramp := min(max((float64(i)-lo)/(hi-lo), 0), 1) // 0: keep, 1: interpolate
		f[i] = f[i]/y.Factor*ramp + f[i]*(1-ramp)
	}
	return f
}

// MatVec64 returns W·x in float64.
func (l Linear) MatVec64(x []float64) []float64 {
	y := make([]float64, l.Out)
	for o := range y {
		row := l.W[o*l.In : (o+1)*l.In]
		var s float64
		for i, w := range row {
			s += float64(w) * x[i]
		}
		y[o] = s
	}
	return y
}

// Forward64 runs the expert in float64.
func (e Expert) Forward64(x []float64) []float64 {
	g, u := e.Gate.MatVec64(x), e.Up.MatVec64(x)
	for i := range g {
		g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
	}
	return e.Down.MatVec64(g)
}

// CacheRow is one token's MLA cache entry: the normalised latent c_kv (512)
// followed by the roped k_pe (64).
type CacheRow []float64

// KVRow computes the new token's cache row from the normalised hidden state
// h at position pos: kv_a_proj_with_mqa, kv_a_layernorm on the first 512,
// RoPE on the last 64.
func KVRow(c Config, w *LayerWeights, h []float64, pos int) CacheRow {
	kva := w.KVA.MatVec64(h)
	row := make(CacheRow, 0, c.KVLoraRank+c.QKRopeHeadDim)
	row = append(row, RMSNorm(kva[:c.KVLoraRank], w.KVANorm, c.RMSNormEps)...)
	pe := append([]float64(nil), kva[c.KVLoraRank:]...)
	mla.RotatePairs(pe, RopeInvFreq(c), pos)
	return append(row, pe...)
}

// RefOutput is the float64 reference of one token's decode step.
type RefOutput struct {
	Attn   []float64 // o_proj output [hidden]
	MoE    []float64 // shared + Σ weight·expert [hidden]
	Out    []float64 // x + Attn + MoE [hidden]
	Scores []float64 // router sigmoid scores [n_routed_experts]
}

// KVB64 returns kv_b_proj as mla's float64 up-projections (W_UK and W_UV
// per head), the operand of mla.AbsorbQ64, mla.UnabsorbOut64 and
// mla.NaiveMLA.
func (w *LayerWeights) KVB64(c Config) *mla.KVB {
	kvb := &mla.KVB{Heads: c.NumAttentionHeads, NopeDim: c.QKNopeHeadDim, VDim: c.VHeadDim, Rank: c.KVLoraRank,
		W: make([]float64, len(w.KVB.W))}
	for i, v := range w.KVB.W {
		kvb.W[i] = float64(v)
	}
	return kvb
}

// Ref is the float64 reference of one MoE layer's decode step, with what
// every token shares (kv_b_proj in float64, the rotary frequencies)
// computed once.
type Ref struct {
	c   Config
	w   *LayerWeights
	kvb *mla.KVB
	inv []float64
}

// NewReference prepares the float64 reference of layer weights w.
func NewReference(c Config, w *LayerWeights) *Ref {
	return &Ref{c: c, w: w, kvb: w.KVB64(c), inv: RopeInvFreq(c)}
}

// Token runs the layer's decode step for one token in float64. The
// attention is computed absorbed (mla.AbsorbQ64: q_nope·W_UK against the
// cached latent, mla.UnabsorbOut64: W_UV after the softmax), which is exact
// algebra; the tests hold it to mla.NaiveMLA, the un-absorbed form (k_nope
// and v rebuilt from the latent through kv_b_proj, as DeepSeek-V3's naive
// attention does). x is the token's hidden state; prefix the cache rows of
// the earlier tokens (their positions 0..len−1, so the token sits at
// position len(prefix)); topkIdx the experts to use (the fast path's
// choice, so that near-tie routing flips do not dominate the comparison;
// their weights are recomputed in float64).
func (rf *Ref) Token(x []float32, prefix []CacheRow, topkIdx []int32) RefOutput {
	return rf.token(x, prefix, nil, topkIdx)
}

// TokenSparse is Token for DeepSeek-V3.2's sparse attention: the token
// attends only the positions in keep (0 … len(prefix), the new token's own
// being len(prefix); −1 entries are ignored, duplicates count once), every
// other logit masked to −Inf before the softmax, as model.py adds its
// index_mask; a token keeping no position gets a zero attention output
// (FlashMLA's empty row).
func (rf *Ref) TokenSparse(x []float32, prefix []CacheRow, keep []int32, topkIdx []int32) RefOutput {
	m := make([]bool, len(prefix)+1)
	for _, p := range keep {
		if p >= 0 && int(p) < len(m) {
			m[p] = true
		}
	}
	return rf.token(x, prefix, m, topkIdx)
}

// hidden64 returns x in float64 and its input_layernorm output.
func (rf *Ref) hidden64(x []float32) (xd, h []float64) {
	xd = make([]float64, len(x))
	for i, v := range x {
		xd[i] = float64(v)
	}
	return xd, RMSNorm(xd, rf.w.InputNorm, rf.c.RMSNormEps)
}

// IndexerKey returns the float64 reference of the indexer key of a token
// with hidden state x (before input_layernorm) at position pos. The layer
// must have an indexer.
func (rf *Ref) IndexerKey(x []float32, pos int) IndexKey {
	_, h := rf.hidden64(x)
	return IndexerKey64(rf.c, rf.w.Indexer, h, pos)
}

// IndexerScores returns the float64 reference of the indexer's logits of
// the decode token x at position len(prefix) over prefix's keys and its own
// (appended first, as model.py stores k before scoring): len(prefix)+1
// scores and their bounds (IndexerScores64).
func (rf *Ref) IndexerScores(x []float32, prefix []IndexKey) (scores, bounds []float64) {
	c, w := rf.c, rf.w
	_, h := rf.hidden64(x)
	qr := RMSNorm(w.QA.MatVec64(h), w.QANorm, c.RMSNormEps)
	keys := append(append([]IndexKey(nil), prefix...), IndexerKey64(c, w.Indexer, h, len(prefix)))
	return IndexerScores64(c, w.Indexer, h, qr, len(prefix), keys)
}

func (rf *Ref) token(x []float32, prefix []CacheRow, keep []bool, topkIdx []int32) RefOutput {
	c, w := rf.c, rf.w
	xd, h := rf.hidden64(x)
	pos := len(prefix)
	qa := RMSNorm(w.QA.MatVec64(h), w.QANorm, c.RMSNormEps)
	q := w.QB.MatVec64(qa)
	rows := append(append([]CacheRow(nil), prefix...), KVRow(c, w, h, pos))
	scale := c.SoftmaxScale()
	nope, rope, lat := c.QKNopeHeadDim, c.QKRopeHeadDim, c.KVLoraRank
	heads := c.NumAttentionHeads
	qNope := make([]float64, heads*nope)
	qPe := make([]float64, heads*rope)
	for hd := 0; hd < heads; hd++ {
		qh := q[hd*(nope+rope) : (hd+1)*(nope+rope)]
		copy(qNope[hd*nope:(hd+1)*nope], qh[:nope])
		pe := qPe[hd*rope : (hd+1)*rope]
		copy(pe, qh[nope:])
		mla.RotatePairs(pe, rf.inv, pos)
	}
	qLat, err := mla.AbsorbQ64(rf.kvb, qNope, qPe, rope)
	if err != nil {
		panic(err) // shapes come from c and w, fixed above
	}
	d := lat + rope
	oLat := make([]float64, heads*lat)
	logits := make([]float64, len(rows))
	for hd := 0; hd < heads; hd++ {
		qh := qLat[hd*d : (hd+1)*d]
		m := math.Inf(-1)
		for j, r := range rows {
			if keep != nil && !keep[j] {
				logits[j] = math.Inf(-1)
				continue
			}
			var s float64
			for i, v := range qh {
				s += v * r[i]
			}
			logits[j] = s * scale
			m = math.Max(m, logits[j])
		}
		if math.IsInf(m, -1) {
			continue // no key: out = 0
		}
		var den float64
		for j := range logits {
			logits[j] = math.Exp(logits[j] - m)
			den += logits[j]
		}
		ol := oLat[hd*lat : (hd+1)*lat]
		for j, r := range rows {
			if logits[j] == 0 {
				continue
			}
			p := logits[j] / den
			for i := range ol {
				ol[i] += p * r[i]
			}
		}
	}
	o, err := mla.UnabsorbOut64(rf.kvb, oLat)
	if err != nil {
		panic(err)
	}
	attn := w.O.MatVec64(o)
	x1 := make([]float64, len(xd))
	for i := range x1 {
		x1[i] = xd[i] + attn[i]
	}
	h2 := RMSNorm(x1, w.PostNorm, c.RMSNormEps)
	lg := w.Gate.MatVec64(h2)
	scores := make([]float64, len(lg))
	for i, v := range lg {
		scores[i] = 1 / (1 + math.Exp(-v))
	}
	wts := RouteWeights64(c, scores, topkIdx)
	moe := w.Shared.Forward64(h2)
	for i, e := range topkIdx {
		y := w.Experts[e].Forward64(h2)
		for j := range moe {
			moe[j] += wts[i] * y[j]
		}
	}
	out := make([]float64, len(xd))
	for i := range out {
		out[i] = x1[i] + moe[i]
	}
	return RefOutput{Attn: attn, MoE: moe, Out: out, Scores: scores}
}
