package mla

import (
	"context"
	"math"
)

// sparseRef is the "ref" sparse backend: for every query row it gathers the
// valid keys (dequantized to float32 exactly as DequantizeFP8Row does), and
// for every head computes the scores, a two-pass softmax and P·V in float64
// before rounding once to float32. Slow and literal: the yardstick.
type sparseRef struct{}

// Name returns "ref".
func (sparseRef) Name() string { return "ref" }

// decodeKeys appends to keys the dequantized records of the valid entries of
// one index row (first n entries of idx) of cache c, using buf as storage.
func decodeKeys(keys [][]float32, buf []float32, c fp8Host, idx []int32) ([][]float32, []float32) {
	for _, t := range idx {
		if t == -1 {
			continue
		}
		if len(buf) < HeadDim {
			buf = make([]float32, 64*HeadDim)
		}
		k := buf[:HeadDim:HeadDim]
		buf = buf[HeadDim:]
		dequantizeFP8Row(k, c.record(int(t)))
		keys = append(keys, k)
	}
	return keys, buf
}

// refAttend computes one head's attention over keys in float64 into o
// [len(o) = d_v] and returns the max logit and lse (natural units, sink
// excluded); no keys gives o = 0, −Inf and +Inf.
func refAttend(q []float32, keys [][]float32, scale float32, sink []float32, h int, z []float64, o []float32) (mx, lse float64) {
	clear(o)
	if len(keys) == 0 {
		return math.Inf(-1), math.Inf(1)
	}
	z = z[:len(keys)]
	mx = math.Inf(-1)
	for t, k := range keys {
		var dot float64
		for c, v := range q {
			dot += float64(v) * float64(k[c])
		}
		z[t] = float64(scale) * dot
		mx = max(mx, z[t])
	}
	var l float64
	for t := range z {
		z[t] = math.Exp(z[t] - mx)
		l += z[t]
	}
	lse = mx + math.Log(l)
	f := 1 / l
	if sink != nil {
		f *= sinkFactor(lse, sink[h])
	}
	acc := make([]float64, len(o))
	for t, k := range keys {
		if z[t] == 0 {
			continue
		}
		for c := range acc {
			acc[c] += z[t] * float64(k[c])
		}
	}
	for c, v := range acc {
		o[c] = float32(v * f)
	}
	return mx, lse
}

// SparseDecode runs p; see SparseBackend.
func (sparseRef) SparseDecode(ctx context.Context, p *SparseDecodeProblem, out, lse []float32) error {
	hc, hx, err := p.hostCaches()
	if err != nil {
		return err
	}
	var keys [][]float32
	var buf []float32
	z := make([]float64, p.TopK+p.ExtraTopK)
	for b := range p.B {
		for j := range p.SQ {
			if err := ctx.Err(); err != nil {
				return err
			}
			keys, buf = keys[:0], nil
			keys, buf = decodeKeys(keys, buf, hc, p.Indices[(b*p.SQ+j)*p.TopK:][:p.TopkLength[b]])
			if p.ExtraCache != nil {
				keys, _ = decodeKeys(keys, buf, hx, p.ExtraIndices[(b*p.SQ+j)*p.ExtraTopK:][:p.ExtraTopkLength[b]])
			}
			for h := range p.HQ {
				q := p.Q[((b*p.SQ+j)*p.HQ+h)*HeadDim:][:HeadDim]
				o := out[((b*p.SQ+j)*p.HQ+h)*p.HeadDimV:][:p.HeadDimV]
				_, l := refAttend(q, keys, p.Scale, p.AttnSink, h, z, o)
				lse[(b*p.HQ+h)*p.SQ+j] = float32(l)
			}
		}
	}
	return nil
}

// SparsePrefill runs p; see SparseBackend.
func (sparseRef) SparsePrefill(ctx context.Context, p *SparsePrefillProblem, out, maxLogits, lse []float32) error {
	d, hpk := p.DQK, p.HQ/p.HKV
	z := make([]float64, p.TopK)
	var keys [][]float32
	for i := range p.SQ {
		if err := ctx.Err(); err != nil {
			return err
		}
		for g := range p.HKV {
			keys = keys[:0]
			for _, t := range p.Indices[(i*p.HKV+g)*p.TopK:][:p.TopkLength[i]] {
				if t >= 0 && int(t) < p.SKV {
					keys = append(keys, p.KV[(int(t)*p.HKV+g)*d:][:d])
				}
			}
			for hh := range hpk {
				h := g*hpk + hh
				q := p.Q[(i*p.HQ+h)*d:][:d]
				o := out[(i*p.HQ+h)*p.HeadDimV:][:p.HeadDimV]
				m, l := refAttend(q, keys, p.Scale, p.AttnSink, h, z, o)
				maxLogits[i*p.HQ+h], lse[i*p.HQ+h] = float32(m), float32(l)
			}
		}
	}
	return nil
}
