package dsv3

import "math"

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
	InputNorm []float32 // input_layernorm.weight [hidden]
	QA        Linear    // self_attn.q_a_proj [q_lora_rank][hidden]
	QANorm    []float32 // self_attn.q_a_layernorm.weight [q_lora_rank]
	QB        Linear    // self_attn.q_b_proj [heads·192][q_lora_rank]
	KVA       Linear    // self_attn.kv_a_proj_with_mqa [576][hidden]
	KVANorm   []float32 // self_attn.kv_a_layernorm.weight [512]
	KVB       Linear    // self_attn.kv_b_proj [heads·(128+128)][512]
	O         Linear    // self_attn.o_proj [hidden][heads·128]
	PostNorm  []float32 // post_attention_layernorm.weight [hidden]
	Gate      Linear    // mlp.gate [n_routed_experts][hidden] (router)
	Bias      []float32 // mlp.gate.e_score_correction_bias [n_routed_experts]
	Experts   []Expert  // mlp.experts.{j}
	Shared    Expert    // mlp.shared_experts (width moe_intermediate_size·n_shared_experts)
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
// d (64 in DeepSeek-V3): θ^(−2i/d), i < d/2, with YaRN's correction when
// rope_scaling has factor > 1, as DeepSeek-V3's inference/model.py
// precompute_freqs_cis applies it whenever the context exceeds
// original_max_position_embeddings (the deployment setting, the same one
// under which SoftmaxScale's mscale² applies): dims whose wavelength fits
// beta_fast rotations in the original context keep θ^(−2i/d), dims with
// fewer than beta_slow rotations are divided by factor, and a linear ramp
// over the dims in between blends the two.
func RopeInvFreq(c Config) []float64 {
	d := c.QKRopeHeadDim
	f := make([]float64, d/2)
	for i := range f {
		f[i] = math.Pow(c.RopeTheta, -2*float64(i)/float64(d))
	}
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

// Rope rotates x (length d) in place at position pos, pairing adjacent
// channels (2i, 2i+1) as DeepSeek-V3's inference/model.py apply_rotary_emb
// does (view_as_complex on interleaved pairs).
func Rope(x []float64, invFreq []float64, pos int) {
	for i, f := range invFreq {
		s, c := math.Sincos(float64(pos) * f)
		a, b := x[2*i], x[2*i+1]
		x[2*i], x[2*i+1] = a*c-b*s, a*s+b*c
	}
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
	Rope(pe, RopeInvFreq(c), pos)
	return append(row, pe...)
}

// RefOutput is the float64 reference of one token's decode step.
type RefOutput struct {
	Attn   []float64 // o_proj output [hidden]
	MoE    []float64 // shared + Σ weight·expert [hidden]
	Out    []float64 // x + Attn + MoE [hidden]
	Scores []float64 // router sigmoid scores [n_routed_experts]
}

// Reference runs one MoE layer's decode step for one token in float64. The
// attention is computed absorbed (q_nope·W_UK against the cached latent,
// W_UV after the softmax), which is exact algebra; ReferenceAttentionNaive
// is the un-absorbed form (k_nope and v rebuilt from the latent through
// kv_b_proj, as DeepSeek-V3's naive attention does) and the tests hold the two
// together. x is the token's hidden state;
// prefix the cache rows of the earlier tokens (their positions 0..len−1, so
// the token sits at position len(prefix)); topkIdx the experts to use (the
// fast path's choice, so that near-tie routing flips do not dominate the
// comparison; their weights are recomputed in float64).
func Reference(c Config, w *LayerWeights, x []float32, prefix []CacheRow, topkIdx []int32) RefOutput {
	xd := make([]float64, len(x))
	for i, v := range x {
		xd[i] = float64(v)
	}
	pos := len(prefix)
	h := RMSNorm(xd, w.InputNorm, c.RMSNormEps)
	qa := RMSNorm(w.QA.MatVec64(h), w.QANorm, c.RMSNormEps)
	q := w.QB.MatVec64(qa)
	rows := append(append([]CacheRow(nil), prefix...), KVRow(c, w, h, pos))
	inv := RopeInvFreq(c)
	scale := c.SoftmaxScale()
	nope, rope, dv, lat := c.QKNopeHeadDim, c.QKRopeHeadDim, c.VHeadDim, c.KVLoraRank
	heads := c.NumAttentionHeads
	o := make([]float64, heads*dv)
	logits := make([]float64, len(rows))
	for hd := 0; hd < heads; hd++ {
		qh := q[hd*(nope+rope) : (hd+1)*(nope+rope)]
		qpe := append([]float64(nil), qh[nope:]...)
		Rope(qpe, inv, pos)
		wuk := w.KVB.W[hd*(nope+dv)*lat : (hd*(nope+dv)+nope)*lat]
		wuv := w.KVB.W[(hd*(nope+dv)+nope)*lat : (hd+1)*(nope+dv)*lat]
		// Absorbed in float64: q_nope·(W_UK·c) = (W_UKᵀ·q_nope)·c. The
		// un-absorbed form is ReferenceAttentionNaive; tests pin the two
		// together.
		qlat := make([]float64, lat)
		for i := 0; i < nope; i++ {
			for j, v := range wuk[i*lat : (i+1)*lat] {
				qlat[j] += qh[i] * float64(v)
			}
		}
		m := math.Inf(-1)
		for j, r := range rows {
			var s float64
			for i := 0; i < lat; i++ {
				s += qlat[i] * r[i]
			}
			for i := 0; i < rope; i++ {
				s += qpe[i] * r[lat+i]
			}
			logits[j] = s * scale
			m = math.Max(m, logits[j])
		}
		var den float64
		for j := range logits {
			logits[j] = math.Exp(logits[j] - m)
			den += logits[j]
		}
		olat := make([]float64, lat)
		for j, r := range rows {
			p := logits[j] / den
			for i := 0; i < lat; i++ {
				olat[i] += p * r[i]
			}
		}
		oh := o[hd*dv : (hd+1)*dv]
		for i := range oh {
			var s float64
			for j, v := range wuv[i*lat : (i+1)*lat] {
				s += float64(v) * olat[j]
			}
			oh[i] = s
		}
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

// ReferenceAttentionNaive returns o_proj's input [heads·v_head_dim] for one
// token computed un-absorbed in float64: every cached latent is expanded
// through kv_b_proj into per-head k_nope and v before the softmax. q is
// q_b_proj's output [heads·192] (before RoPE), rows the cache rows including
// the token's own, at position len(rows)−1.
func ReferenceAttentionNaive(c Config, w *LayerWeights, q []float64, rows []CacheRow) []float64 {
	nope, rope, dv, lat := c.QKNopeHeadDim, c.QKRopeHeadDim, c.VHeadDim, c.KVLoraRank
	pos := len(rows) - 1
	inv := RopeInvFreq(c)
	scale := c.SoftmaxScale()
	o := make([]float64, c.NumAttentionHeads*dv)
	logits := make([]float64, len(rows))
	for hd := 0; hd < c.NumAttentionHeads; hd++ {
		qh := q[hd*(nope+rope) : (hd+1)*(nope+rope)]
		qpe := append([]float64(nil), qh[nope:]...)
		Rope(qpe, inv, pos)
		wuk := Linear{Out: nope, In: lat, W: w.KVB.W[hd*(nope+dv)*lat : (hd*(nope+dv)+nope)*lat]}
		wuv := Linear{Out: dv, In: lat, W: w.KVB.W[(hd*(nope+dv)+nope)*lat : (hd+1)*(nope+dv)*lat]}
		m := math.Inf(-1)
		for j, r := range rows {
			k := wuk.MatVec64(r[:lat])
			var s float64
			for i := 0; i < nope; i++ {
				s += qh[i] * k[i]
			}
			for i := 0; i < rope; i++ {
				s += qpe[i] * r[lat+i]
			}
			logits[j] = s * scale
			m = math.Max(m, logits[j])
		}
		var den float64
		for j := range logits {
			logits[j] = math.Exp(logits[j] - m)
			den += logits[j]
		}
		oh := o[hd*dv : (hd+1)*dv]
		for j, r := range rows {
			v := wuv.MatVec64(r[:lat])
			p := logits[j] / den
			for i := range oh {
				oh[i] += p * v[i]
			}
		}
	}
	return o
}
