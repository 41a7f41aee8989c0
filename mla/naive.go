package mla

import (
	"math"
)

// Un-absorbed ("naive") MLA and the weight-absorption helpers, after
// DeepSeek-V3 inference/model.py class MLA (attn_impl "naive" versus
// "absorb"). Dimensions follow the model: kv_lora_rank 512, qk_nope_head_dim
// 128, qk_rope_head_dim 64, v_head_dim 128.

// DeepSeek-V3's per-head dimensions (config.json).
const (
	QKNopeHeadDim = 128
	VHeadDim      = 128
)

// KVB holds the up-projections of one layer, from the checkpoint's
// self_attn.kv_b_proj.weight [Heads·(NopeDim+VDim), Rank] viewed as [Heads,
// NopeDim+VDim, Rank]: rows 0…NopeDim−1 of head h are W_UK[h] and the rest
// W_UV[h]. Elements are float64 (dequantise FP8 weights first).
type KVB struct {
	Heads, NopeDim, VDim, Rank int
	W                          []float64 // [Heads][NopeDim+VDim][Rank]
}

// Check verifies the dimensions and len(W).
func (w *KVB) Check() error {
	if w == nil {
		return argErr("kv_b_proj", ErrShape, "nil weights")
	}
	if w.Heads <= 0 || w.NopeDim <= 0 || w.VDim <= 0 || w.Rank <= 0 {
		return argErr("kv_b_proj", ErrShape, "heads %d, nope %d, v %d, rank %d must be > 0", w.Heads, w.NopeDim, w.VDim, w.Rank)
	}
	if len(w.W) != w.Heads*(w.NopeDim+w.VDim)*w.Rank {
		return argErr("kv_b_proj", ErrShape, "%d elements, want [%d, %d, %d]", len(w.W), w.Heads, w.NopeDim+w.VDim, w.Rank)
	}
	return nil
}

// uk returns W_UK[h][i] (Rank values) and uv W_UV[h][i].
func (w *KVB) uk(h, i int) []float64 {
	o := (h*(w.NopeDim+w.VDim) + i) * w.Rank
	return w.W[o : o+w.Rank]
}
func (w *KVB) uv(h, i int) []float64 { return w.uk(h, w.NopeDim+i) }

// RoPE rotates x (an even number of channels) in place for position pos with
// base theta, pairing channels (2i, 2i+1) at frequency theta^(−2i/len(x)),
// as model.py's apply_rotary_emb (complex view of consecutive pairs) does
// without YaRN's frequency correction. It is RotatePairs with
// RoPEFrequencies(len(x), theta).
func RoPE(x []float64, pos int, theta float64) {
	RotatePairs(x, RoPEFrequencies(len(x), theta), pos)
}

// RoPEFrequencies returns the d/2 rotary inverse frequencies
// theta^(−2i/d), i < d/2, of a rope head dim d (64 in DeepSeek-V3), as
// model.py's precompute_freqs_cis computes them before YaRN's correction.
func RoPEFrequencies(d int, theta float64) []float64 {
	f := make([]float64, max(d, 0)/2)
	for i := range f {
		f[i] = math.Pow(theta, -2*float64(i)/float64(d))
	}
	return f
}

// RotatePairs is the one rotary embedding of the module: it rotates x in
// place at position pos, pairing channels (2i, 2i+1) at inverse frequency
// invFreq[i] (angle pos·invFreq[i]), as model.py's apply_rotary_emb does
// on the complex view of consecutive pairs. Channels beyond 2·len(invFreq)
// are left alone; invFreq may carry a YaRN correction (see RoPEFrequencies
// for the plain one).
func RotatePairs(x []float64, invFreq []float64, pos int) {
	for i, f := range invFreq {
		if 2*i+1 >= len(x) {
			break
		}
		s, c := math.Sincos(float64(pos) * f)
		a, b := x[2*i], x[2*i+1]
		x[2*i], x[2*i+1] = a*c-b*s, a*s+b*c
	}
}

// RotateHalves is RotatePairs in the non-interleaved (GPT-NeoX) layout:
// it rotates x in place at position pos, pairing channel i with channel
// i+n/2 (n = 2·len(invFreq)) at inverse frequency invFreq[i], so that
// y[i] = x[i]·cos − x[i+n/2]·sin and y[i+n/2] = x[i]·sin + x[i+n/2]·cos.
// DeepSeek-V3.2's lightning indexer ropes its q and k this way (the
// corrected inference/model.py, apply_rotary_emb(..., interleaved=False));
// MLA itself stays interleaved (RotatePairs). Channels beyond n are left
// alone; it does nothing if x is shorter than n.
func RotateHalves(x []float64, invFreq []float64, pos int) {
	n := len(invFreq)
	if 2*n > len(x) {
		return
	}
	for i, f := range invFreq {
		s, c := math.Sincos(float64(pos) * f)
		a, b := x[i], x[i+n]
		x[i], x[i+n] = a*c-b*s, a*s+b*c
	}
}

// NaiveMLA computes one request's attention the un-absorbed way, in
// float64: every head h gets ordinary keys k_h[t] = [W_UK[h]·c_t ; kPe_t]
// (NopeDim+RopeDim) and values v_h[t] = W_UV[h]·c_t (VDim), and query token
// j attends them with softmax(scale·⟨[qNope;qPe], k⟩) (bottom-right causal
// mask when causal). Shapes: qNope [SQ][Heads][NopeDim], qPe
// [SQ][Heads][RopeDim], c [L][Rank] (the cached, normalised latent), kPe
// [L][RopeDim] (rotated). It returns out [SQ][Heads][VDim] and lse
// [Heads][SQ] (natural log; +Inf and out 0 for a row that sees no key).
func NaiveMLA(w *KVB, qNope, qPe, c, kPe []float64, sq, l, ropeDim int, scale float64, causal bool) (out, lse []float64, err error) {
	if err := w.Check(); err != nil {
		return nil, nil, err
	}
	h, dn, dv, r := w.Heads, w.NopeDim, w.VDim, w.Rank
	if sq <= 0 || l < 0 || ropeDim < 0 || len(qNope) != sq*h*dn || len(qPe) != sq*h*ropeDim || len(c) != l*r || len(kPe) != l*ropeDim {
		return nil, nil, argErr("q", ErrShape, "qNope %d, qPe %d, c %d, kPe %d do not fit sq %d, heads %d, len %d, rope %d",
			len(qNope), len(qPe), len(c), len(kPe), sq, h, l, ropeDim)
	}
	out = make([]float64, sq*h*dv)
	lse = make([]float64, h*sq)
	kn := make([]float64, l*dn) // per head
	v := make([]float64, l*dv)
	s := make([]float64, l)
	for hh := range h {
		for t := range l {
			ct := c[t*r : (t+1)*r]
			for i := range dn {
				kn[t*dn+i] = dot64(w.uk(hh, i), ct)
			}
			for i := range dv {
				v[t*dv+i] = dot64(w.uv(hh, i), ct)
			}
		}
		for j := range sq {
			vis := l
			if causal {
				vis = max(0, min(l, l-sq+j+1))
			}
			if vis == 0 {
				lse[hh*sq+j] = math.Inf(1)
				continue
			}
			qn := qNope[(j*h+hh)*dn:][:dn]
			qp := qPe[(j*h+hh)*ropeDim:][:ropeDim]
			mx := math.Inf(-1)
			for t := range vis {
				s[t] = scale * (dot64(qn, kn[t*dn:(t+1)*dn]) + dot64(qp, kPe[t*ropeDim:(t+1)*ropeDim]))
				mx = max(mx, s[t])
			}
			var sum float64
			for t := range vis {
				s[t] = math.Exp(s[t] - mx)
				sum += s[t]
			}
			o := out[(j*h+hh)*dv:][:dv]
			for t := range vis {
				p := s[t] / sum
				for i := range o {
					o[i] += p * v[t*dv+i]
				}
			}
			lse[hh*sq+j] = mx + math.Log(sum)
		}
	}
	return out, lse, nil
}

// AbsorbQ builds the absorbed decode query: for each of the n = len(qNope)/
// (Heads·NopeDim) (token, head) rows, [W_UK[h]ᵀ·q_nope (Rank) ; q_pe
// (RopeDim)], the Rank+RopeDim = 576-wide row that Decode takes (q [B, SQ,
// HQ, 576] flattened). qNope is [n/Heads][Heads][NopeDim], qPe
// [n/Heads][Heads][RopeDim]. Arithmetic is float64 (AbsorbQ64), rounded to
// float32 once.
func AbsorbQ(w *KVB, qNope, qPe []float64, ropeDim int) ([]float32, error) {
	q64, err := AbsorbQ64(w, qNope, qPe, ropeDim)
	if err != nil {
		return nil, err
	}
	q := make([]float32, len(q64))
	for i, x := range q64 {
		q[i] = float32(x)
	}
	return q, nil
}

// AbsorbQ64 is AbsorbQ kept in float64, for float64 references: the one
// weight absorption (q_nope·W_UK folded into the query) of the module.
// Shapes and errors are AbsorbQ's.
func AbsorbQ64(w *KVB, qNope, qPe []float64, ropeDim int) ([]float64, error) {
	if err := w.Check(); err != nil {
		return nil, err
	}
	h, dn, r := w.Heads, w.NopeDim, w.Rank
	if len(qNope)%(h*dn) != 0 || ropeDim < 0 || len(qPe) != len(qNope)/dn*ropeDim {
		return nil, argErr("q_nope", ErrShape, "qNope %d and qPe %d elements do not fit heads %d, nope %d, rope %d", len(qNope), len(qPe), h, dn, ropeDim)
	}
	rows := len(qNope) / dn
	d := r + ropeDim
	q := make([]float64, rows*d)
	for row := range rows {
		hh := row % h
		lat := q[row*d : row*d+r]
		qn := qNope[row*dn : (row+1)*dn]
		for i, x := range qn {
			uk := w.uk(hh, i)
			for e := range lat {
				lat[e] += x * uk[e]
			}
		}
		copy(q[row*d+r:(row+1)*d], qPe[row*ropeDim:(row+1)*ropeDim])
	}
	return q, nil
}

// UnabsorbOut maps the decode output back to per-head values: for each of
// the len(oLat)/Rank rows (head h = row mod Heads), W_UV[h]·o_lat, VDim wide.
// oLat is Decode's out [B, SQ, HQ, Rank] flattened; the result is [B, SQ, HQ,
// VDim] in float64 (what model.py then feeds to wo).
func UnabsorbOut(w *KVB, oLat []float32) ([]float64, error) {
	o := make([]float64, len(oLat))
	for i, x := range oLat {
		o[i] = float64(x)
	}
	return UnabsorbOut64(w, o)
}

// UnabsorbOut64 is UnabsorbOut for a float64 latent output (a float64
// reference's). Shapes and errors are UnabsorbOut's.
func UnabsorbOut64(w *KVB, oLat []float64) ([]float64, error) {
	if err := w.Check(); err != nil {
		return nil, err
	}
	if len(oLat)%(w.Heads*w.Rank) != 0 {
		return nil, argErr("out", ErrShape, "%d elements is not a multiple of heads %d × rank %d", len(oLat), w.Heads, w.Rank)
	}
	rows := len(oLat) / w.Rank
	out := make([]float64, rows*w.VDim)
	for row := range rows {
		o := oLat[row*w.Rank : (row+1)*w.Rank]
		for i := range w.VDim {
			out[row*w.VDim+i] = dot64(w.uv(row%w.Heads, i), o)
		}
	}
	return out, nil
}

func dot64(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}
