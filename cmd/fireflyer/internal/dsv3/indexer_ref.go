package dsv3

import (
	"cmp"
	"math"
	"slices"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// IndexKey is one token's lightning-indexer key in the float64 reference:
// the values of its FP8 codes (index_head_dim) and its act_quant scale.
type IndexKey struct {
	K     []float64
	Scale float64
}

// quant64 rounds v to float32 and applies act_quant, returning the codes'
// values and the scale.
func quant64(v []float64) ([]float64, float64) {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	codes := make([]tensor.E4M3, len(v))
	s := ActQuant(codes, f)
	out := make([]float64, len(v))
	for i, c := range codes {
		out[i] = float64(c.Float32())
	}
	return out, float64(s)
}

// IndexerKey64 is the float64 reference of the indexer key of one token
// whose input_layernorm output is h, at position pos: wk, k_norm
// (LayerNorm), non-interleaved RoPE on the first qk_rope_head_dim channels,
// the Hadamard rotation, then act_quant, which is part of the model.
func IndexerKey64(c Config, iw *IndexerLinear, h []float64, pos int) IndexKey {
	k := LayerNorm(iw.WK.MatVec64(h), iw.KNormW, iw.KNormB, IndexerNormEps)
	rotate64(c, k, pos)
	v, s := quant64(k)
	return IndexKey{K: v, Scale: s}
}

func rotate64(c Config, v []float64, pos int) {
	ropeHalves(v[:c.QKRopeHeadDim], RopeInvFreq(c), pos)
	if err := Hadamard(v); err != nil {
		panic(err) // index_head_dim is validated to 128
	}
}

// ropeHalves is the non-interleaved rotation written out on its own, so
// that the reference does not share the fast path's (mla.RotateHalves).
func ropeHalves(x []float64, inv []float64, pos int) {
	n := len(x) / 2
	for i := 0; i < n && i < len(inv); i++ {
		a := float64(pos) * inv[i]
		c, s := math.Cos(a), math.Sin(a)
		x[i], x[i+n] = x[i]*c-x[i+n]*s, x[i]*s+x[i+n]*c
	}
}

// IndexerScores64 is the float64 reference of the indexer's logits of one
// query token (input_layernorm output h, q_a_layernorm output qr, position
// pos) against keys (positions 0 … len(keys)−1): q = wq_b(qr) per head,
// roped, rotated and act_quant'ed like the keys; w_h =
// weights_proj(h)_h·H^−0.5·q_scale_h·d^−0.5; score_s = k_scale_s·Σ_h
// w_h·max(0, q_h·k_s), all in float64. It also returns each score's
// Cauchy–Schwarz bound k_scale_s·Σ_h |w_h|·‖q_h‖·‖k_s‖, the scale of the
// error rounding q and k gives a score.
func IndexerScores64(c Config, iw *IndexerLinear, h, qr []float64, pos int, keys []IndexKey) (scores, bounds []float64) {
	H, d := c.IndexNHeads, c.IndexHeadDim
	q := iw.WQB.MatVec64(qr)
	wp := iw.WeightsProj.MatVec64(h)
	qs := make([][]float64, H)
	w := make([]float64, H)
	for hd := 0; hd < H; hd++ {
		v := append([]float64(nil), q[hd*d:(hd+1)*d]...)
		rotate64(c, v, pos)
		var s float64
		qs[hd], s = quant64(v)
		w[hd] = wp[hd] / math.Sqrt(float64(H)) * s / math.Sqrt(float64(d))
	}
	var qn float64 // Σ_h |w_h|·‖q_h‖
	for hd := 0; hd < H; hd++ {
		var n float64
		for _, x := range qs[hd] {
			n += x * x
		}
		qn += math.Abs(w[hd]) * math.Sqrt(n)
	}
	scores, bounds = make([]float64, len(keys)), make([]float64, len(keys))
	for j, k := range keys {
		var acc, kn float64
		for hd := 0; hd < H; hd++ {
			var dot float64
			for i, x := range qs[hd] {
				dot += x * k.K[i]
			}
			acc += w[hd] * math.Max(dot, 0)
		}
		for _, x := range k.K {
			kn += x * x
		}
		scores[j] = k.Scale * acc
		bounds[j] = k.Scale * qn * math.Sqrt(kn)
	}
	return scores, bounds
}

// TopK64 returns the positions of the k largest scores (all of them when
// there are fewer), by descending score, ties to the lower position: the
// reference of TopK, by a full sort.
func TopK64(scores []float64, k int) []int32 {
	idx := make([]int32, len(scores))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(scores[b], scores[a]) })
	return idx[:min(k, len(idx))]
}
