package oracle

import (
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Thresholds of DeepGEMM's attention tests (tests/test_attention.py), for
// calc_diff taken after the −Inf positions are set to 0.
const (
	// GateIndexerUnquantized bounds calc_diff of the indexer logits against
	// the float64 logits of the unquantized (BF16) q and k.
	GateIndexerUnquantized = 1e-3
	// GateIndexerDequantized bounds calc_diff against the float64 logits of
	// the dequantized q and k (float32 logits and weights).
	GateIndexerDequantized = 5e-6
)

// MQALogits64 returns the float64 indexer logits [m, n]: for row i and key
// j in [ks[i], ke[i]) (clipped to [0, n)), Σ_h w[i,h]·max(0, Σ_c
// q[i,h,c]·k[j,c]), and −Inf elsewhere, for q [m, h, d] and k [n, d] the
// float32 values (dequantized: code·scale for k) — DeepGEMM's
// ref_fp8_mqa_logits in float64.
func MQALogits64(q, k, weights []float32, ks, ke []int32, m, n, h, d int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			// upstream's mask: arange ≥ ks & arange < ke (written out
			// here, not through gemm's Range, so that a wrong Range fails).
			if j < int(ks[i]) || j >= int(ke[i]) {
				out[i*n+j] = math.Inf(-1)
				continue
			}
			out[i*n+j] = score64(q[i*h*d:(i+1)*h*d], weights[i*h:(i+1)*h], k[j*d:(j+1)*d], h, d)
		}
	}
	return out
}

func score64(q, w, k []float32, h, d int) float64 {
	var acc float64
	for hh := 0; hh < h; hh++ {
		var s float64
		for c := 0; c < d; c++ {
			s += float64(q[hh*d+c]) * float64(k[c])
		}
		acc += float64(w[hh]) * max(s, 0)
	}
	return acc
}

// PagedMQALogits64 returns the float64 paged indexer logits [B·NextN,
// MaxContextLen] of in's dimensions and visibility rule (in.Visible), with
// q [B, NextN, H, d] and keys[b] request b's logical keys [≥ visible, d] as
// float32 values; −Inf outside the visible ranges (DeepGEMM's
// ref_fp8_paged_mqa_logits in float64).
func PagedMQALogits64(in *gemm.PagedMQALogitsInput, q []float32, keys [][]float32, d int) []float64 {
	w, h := in.MaxContextLen, in.Heads
	out := make([]float64, in.B*in.NextN*w)
	for b := 0; b < in.B; b++ {
		for t := 0; t < in.NextN; t++ {
			r := b*in.NextN + t
			for j := 0; j < w; j++ {
				// upstream's masks, written out (not gemm's Visible):
				// 1-D: j ≤ context_lens[b] − next_n + t; 2-D: j <
				// context_lens[b, t].
				visible := j <= int(in.ContextLens[b])-in.NextN+t
				if in.ContextLens2D {
					visible = j < int(in.ContextLens[b*in.NextN+t])
				}
				if !visible {
					out[r*w+j] = math.Inf(-1)
					continue
				}
				out[r*w+j] = score64(q[r*h*d:(r+1)*h*d], in.Weights[r*h:(r+1)*h], keys[b][j*d:(j+1)*d], h, d)
			}
		}
	}
	return out
}

// IndexerDiff returns calc_diff(got, want) after zeroing the −Inf
// positions of want in both, and an error when got is −Inf exactly where
// want is not (or the other way round) with mask set — upstream's two
// checks. Without mask only the positions where want is finite count.
func IndexerDiff(got []float32, want []float64, mask bool) (float64, error) {
	if len(got) != len(want) {
		return 1, fmt.Errorf("len %d, want %d", len(got), len(want))
	}
	x, y := make([]float64, len(got)), make([]float64, len(got))
	for i, g := range got {
		wInf, gInf := math.IsInf(want[i], -1), math.IsInf(float64(g), -1)
		if mask && wInf != gInf {
			return 1, fmt.Errorf("element %d: got %v, want %v (−Inf masks differ)", i, g, want[i])
		}
		if !wInf {
			x[i], y[i] = float64(g), want[i]
		}
	}
	return testutil.CalcDiff(x, y), nil
}

// MQALogitsProblem is a test problem of MQALogits drawn as DeepGEMM's
// test_mqa_logits draws it.
type MQALogitsProblem struct {
	In *gemm.MQALogitsInput
	// QF [M, H, d] and KF [N, d] are the unquantized BF16 values; DQ and DK
	// the dequantized ones (q's codes, k's codes times its scale).
	QF, KF, DQ, DK []float32
}

// NewMQALogitsProblem draws q [m, h, d], k [n, d] (BF16 randn) and weights
// [m, h] (float32 randn), casts q straight to E4M3 and quantizes k per
// token (d ≤ 128: one scale per row, amax/448, per_custom_dims_cast_to_fp8).
// cp selects upstream's context-parallel key ranges (generate_cp_test_data:
// n a multiple of m, m even), otherwise ks = 0, ke[i] = i + n − m. It panics
// for d > 128 or a cp shape upstream cannot draw (a caller bug).
func NewMQALogitsProblem(seed uint64, m, n, h, d int, cp bool) *MQALogitsProblem {
	if d > tensor.ScaleBlock || cp && (m%2 != 0 || m == 0 || n%m != 0) {
		panic(fmt.Sprintf("oracle: NewMQALogitsProblem: bad shape m=%d n=%d d=%d cp=%v", m, n, d, cp))
	}
	r := testutil.RNG(seed)
	p := &MQALogitsProblem{QF: Randn(r, m*h*d), KF: Randn(r, n*d)}
	in := &gemm.MQALogitsInput{SeqLen: m, Heads: h, HeadDim: d, SeqLenKV: n,
		Weights: testutil.Normal(r, m*h, 0, 1), KS: make([]int32, m), KE: make([]int32, m)}
	in.Q = make([]tensor.E4M3, len(p.QF))
	p.DQ = make([]float32, len(p.QF))
	for i, v := range p.QF {
		in.Q[i] = tensor.E4M3FromFloat32(v)
		p.DQ[i] = in.Q[i].Float32()
	}
	km, err := tensor.QuantizePerToken(p.KF, n, d, tensor.QuantOptions{})
	if err != nil {
		panic(err)
	}
	kh, _ := km.Host()
	in.K, in.KScales = kh.Data, kh.ScalesF32
	p.DK, _ = tensor.Dequantize(km)
	if cp {
		chunk, cpSize := m/2, n/m
		id := cpSize / 3
		for i := 0; i < chunk; i++ {
			in.KE[i] = int32(id*chunk + i)
			in.KE[i+chunk] = int32((cpSize*2-1-id)*chunk + i)
		}
	} else {
		for i := range in.KE {
			in.KE[i] = int32(i + n - m)
		}
	}
	p.In = in
	return p
}

// PagedMQALogitsProblem is a test problem of PagedMQALogits drawn as
// DeepGEMM's test_paged_mqa_logits draws it.
type PagedMQALogitsProblem struct {
	In *gemm.PagedMQALogitsInput
	// QF [B, NextN, H, d] are q's unquantized values, DQ its codes' values;
	// KF[b] and DK[b] request b's logical keys [MaxVisible(b), d],
	// unquantized and dequantized from the cache.
	QF, DQ []float32
	KF, DK [][]float32
}

// NewPagedMQALogitsProblem draws a batch of b requests with context lengths
// uniform in [0.7·avgCtx, 1.3·avgCtx), q [b, nextN, h, d] (BF16 randn, cast
// to E4M3), weights (float32 randn) and keys (BF16 randn) written to an
// IndexerCache of blockKV-token blocks through a random permutation of the
// blocks (kv_cache_cast_to_fp8: per token amax/448). ctx2D draws 2-D
// context lens as upstream does (last column the request's length, the
// others uniform in [0, length]), otherwise 1-D. MaxContextLen is the
// longest context rounded up to a multiple of blockKV plus one block.
func NewPagedMQALogitsProblem(seed uint64, b, nextN, h, d, blockKV, avgCtx int, ctx2D bool) *PagedMQALogitsProblem {
	r := testutil.RNG(seed)
	lens := make([]int32, b)
	maxLen := 0
	for i := range lens {
		lo, hi := int(0.7*float64(avgCtx)), int(1.3*float64(avgCtx))
		lens[i] = int32(lo + r.IntN(max(hi-lo, 1)))
		lens[i] = max(lens[i], int32(nextN))
		maxLen = max(maxLen, int(lens[i]))
	}
	maxBlocks := (maxLen+blockKV-1)/blockKV + 1
	numBlocks := b*maxBlocks + 3
	cache, err := gemm.NewIndexerCache(numBlocks, blockKV, d)
	if err != nil {
		panic(err)
	}
	perm := r.Perm(numBlocks)
	table := make([]int32, b*maxBlocks)
	for i := range table {
		table[i] = int32(perm[i])
	}
	p := &PagedMQALogitsProblem{QF: Randn(r, b*nextN*h*d)}
	in := &gemm.PagedMQALogitsInput{B: b, NextN: nextN, Heads: h, Cache: cache,
		Weights: testutil.Normal(r, b*nextN*h, 0, 1), BlockTable: table, MaxBlocks: maxBlocks,
		MaxContextLen: maxBlocks * blockKV, ContextLens2D: ctx2D}
	in.Q = make([]tensor.E4M3, len(p.QF))
	p.DQ = make([]float32, len(p.QF))
	for i, v := range p.QF {
		in.Q[i] = tensor.E4M3FromFloat32(v)
		p.DQ[i] = in.Q[i].Float32()
	}
	if ctx2D {
		in.ContextLens = make([]int32, b*nextN)
		for i := range b {
			for t := 0; t < nextN; t++ {
				in.ContextLens[i*nextN+t] = int32(r.IntN(int(lens[i]) + 1))
			}
			in.ContextLens[i*nextN+nextN-1] = lens[i]
		}
	} else {
		in.ContextLens = lens
	}
	p.In = in
	for i := range b {
		n := in.MaxVisible(i)
		kf := Randn(r, n*d)
		row := table[i*maxBlocks : (i+1)*maxBlocks]
		if err := cache.WriteTokens(row, 0, kf, tensor.QuantOptions{}); err != nil {
			panic(err)
		}
		dk, err := cache.Dequantize(row, n)
		if err != nil {
			panic(err)
		}
		p.KF, p.DK = append(p.KF, kf), append(p.DK, dk)
	}
	return p
}

// NewPagedMQALogitsDecode returns the benchmark form of a decode step:
// b requests of exactly ctx keys each (next_n = 1, 1-D context lens), q
// and the cached keys random E4M3 codes of N(0,1) values, key scales and
// weights positive, blocks of blockKV tokens assigned in a random order.
// It skips the quantizer and the float64 oracle, so a 64k-token context
// builds in well under a second.
func NewPagedMQALogitsDecode(seed uint64, b, h, d, blockKV, ctx int) *gemm.PagedMQALogitsInput {
	r := testutil.RNG(seed)
	maxBlocks := max((ctx+blockKV-1)/blockKV, 1)
	cache, err := gemm.NewIndexerCache(b*maxBlocks, blockKV, d)
	if err != nil {
		panic(err)
	}
	var lut [256]tensor.E4M3 // codes of N(0,1) draws, reused
	for i, v := range testutil.Normal(r, len(lut), 0, 1) {
		lut[i] = tensor.E4M3FromFloat32(v)
	}
	for i := range cache.Data {
		cache.Data[i] = byte(lut[r.IntN(len(lut))])
	}
	for blk := 0; blk < cache.NumBlocks; blk++ {
		for s := 0; s < blockKV; s++ {
			codes := cache.Codes(blk, s)
			_ = cache.SetToken(blk, s, codes, 0.01+0.01*r.Float32())
		}
	}
	perm := r.Perm(cache.NumBlocks)
	in := &gemm.PagedMQALogitsInput{B: b, NextN: 1, Heads: h, Cache: cache,
		Q: make([]tensor.E4M3, b*h*d), Weights: testutil.Uniform(r, b*h, 0, 1),
		ContextLens: make([]int32, b), BlockTable: make([]int32, b*maxBlocks), MaxBlocks: maxBlocks, MaxContextLen: ctx}
	for i := range in.Q {
		in.Q[i] = lut[r.IntN(len(lut))]
	}
	for i := range in.ContextLens {
		in.ContextLens[i] = int32(ctx)
	}
	for i := range in.BlockTable {
		in.BlockTable[i] = int32(perm[i])
	}
	return in
}

// PagedMQALogitsFLOPs returns the FLOPs of in's logits: 2·H·d per visible
// (row, key) pair.
func PagedMQALogitsFLOPs(in *gemm.PagedMQALogitsInput) float64 {
	var pairs float64
	for b := 0; b < in.B; b++ {
		for t := 0; t < in.NextN; t++ {
			pairs += float64(in.Visible(b, t))
		}
	}
	return 2 * float64(in.Heads) * float64(in.Cache.HeadDim) * pairs
}
