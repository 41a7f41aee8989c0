package oracle

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Upstream's tolerances for sparse attention (FlashMLA
// tests/test_flash_mla_sparse_decoding.py and test_flash_mla_sparse_prefill.py
// through kernelkit's check_is_allclose): an element passes if its absolute
// error is below Abs or its relative error below Rel; the whole tensor's
// calc_diff must also stay at or below CalcDiff; ±Inf and NaN must sit in
// the same places.
const (
	SparseDecodeOutAbs      = 1e-3
	SparseDecodeOutRel      = 2.01 / 128
	SparseDecodeOutCalcDiff = 5e-6
	SparseDecodeLSEAbs      = 1e-6
	SparseDecodeLSERel      = 8.01 / 65536

	SparsePrefillOutAbs      = 8e-4
	SparsePrefillOutRel      = 3.01 / 128
	SparsePrefillOutCalcDiff = 7e-6
	SparsePrefillLSEAbs      = 1e-6
	SparsePrefillLSERel      = 2.01 / 65536
)

// InvalidPrefillIndices are the invalid entries upstream's prefill test
// plants in index rows (with s_kv itself added by the builder): every one
// must be skipped, none read.
var InvalidPrefillIndices = []int32{math.MinInt32, -123456, -1, 114514, 1919810, 2147480000, math.MaxInt32}

// SparseDecodeCase is one sparse decode problem of the grid ported from
// FlashMLA's sparse decoding test. Zero PageSize means 64, zero Scale means
// upstream's test scale 576^-0.55.
type SparseDecodeCase struct {
	B, SQ, HQ  int
	SK         int  // tokens per request in the cache
	TopK       int  // index row width
	PageSize   int  //
	Varlen     bool // topk_length[b] drawn from [0, topk] (upstream's varlen)
	Sink       bool // attn_sink ~ N(0,1), ~31% +Inf, ~31% −Inf
	AllInvalid bool // every index of request 0 is −1 (and its topk_length 0 when Varlen)
	Dup        bool // every row repeats some of its indices
	ExtraTopK  int  // > 0: an extra cache (page size 61 tokens) of SK/2 tokens per request
	Scale      float32
	Seed       uint64
}

// Name returns a readable, unique name such as
// "b4_sq1_hq128_sk2046_topk2048_p64_sink_extra64".
func (c SparseDecodeCase) Name() string {
	c = c.withDefaults()
	n := fmt.Sprintf("b%d_sq%d_hq%d_sk%d_topk%d_p%d", c.B, c.SQ, c.HQ, c.SK, c.TopK, c.PageSize)
	for _, f := range []struct {
		on bool
		s  string
	}{{c.Varlen, "_varlen"}, {c.Sink, "_sink"}, {c.AllInvalid, "_allinvalid"}, {c.Dup, "_dup"}} {
		if f.on {
			n += f.s
		}
	}
	if c.ExtraTopK > 0 {
		n += fmt.Sprintf("_extra%d", c.ExtraTopK)
	}
	return n
}

func (c SparseDecodeCase) withDefaults() SparseDecodeCase {
	if c.PageSize == 0 {
		c.PageSize = mla.UpstreamPageSize
	}
	if c.Scale == 0 {
		c.Scale = float32(math.Pow(mla.HeadDim, -0.55))
	}
	return c
}

// SparseDecodeInput is a built case: the arguments of mla.SparseDecode.
type SparseDecodeInput struct {
	Case    SparseDecodeCase
	Q       mla.Query
	Cache   *mla.PagedCache // of the FP8 storage kind
	Indices []int32
	TopK    int
	Opts    mla.SparseDecodeOptions
}

// clamp1 is upstream's clamp(-1, 1).
func clamp1(x []float32) []float32 {
	for i, v := range x {
		x[i] = max(-1, min(1, v))
	}
	return x
}

// fp8Cache builds an FP8 cache holding b requests of sk tokens each in
// randomly permuted blocks (plus a spare), every other slot poisoned with
// NaN, rows ~ randn/10 clamped to ±1 quantized with FlashMLA's test recipe.
// It returns the cache and, per request, the token index of each position.
func fp8Cache(r *rand.Rand, b, sk, page int) (*mla.PagedCache, [][]int32, error) {
	per := (sk + page - 1) / page
	nb := b*per + 1
	pc, err := mla.NewFP8PagedCache(nb, page)
	if err != nil {
		return nil, nil, err
	}
	c := pc.FP8
	if err := c.Poison(); err != nil {
		return nil, nil, err
	}
	perm := r.Perm(nb)
	pos := make([][]int32, b)
	for i := range b {
		pos[i] = make([]int32, sk)
		for t := range sk {
			blk := perm[i*per+t/page]
			pos[i][t] = int32(blk*page + t%page)
			if err := c.SetRow(blk, t%page, clamp1(testutil.Normal(r, mla.HeadDim, 0, 0.1)), mla.FP8RecipeFlashMLATest); err != nil {
				return nil, nil, err
			}
		}
	}
	return pc, pos, nil
}

// sparseRows fills idx [b, sq, topk] with per-row unique positions of
// request b drawn from pos[b], −1 padded when the request is shorter than
// topk; dup repeats a few entries within each row.
func sparseRows(r *rand.Rand, pos [][]int32, sq, topk int, dup bool) []int32 {
	b := len(pos)
	idx := make([]int32, b*sq*topk)
	for i := range b {
		for j := range sq {
			row := idx[(i*sq+j)*topk:][:topk]
			perm := r.Perm(len(pos[i]))
			for k := range row {
				row[k] = -1
				if k < len(perm) {
					row[k] = pos[i][perm[k]]
				}
			}
			r.Shuffle(len(row), func(a, c int) { row[a], row[c] = row[c], row[a] })
			if dup && topk >= 4 {
				for k := 0; k < topk/4; k++ {
					row[r.IntN(topk)] = row[r.IntN(topk)]
				}
			}
		}
	}
	return idx
}

// Build makes the case's input deterministically from its Seed.
func (c SparseDecodeCase) Build() (*SparseDecodeInput, error) {
	c = c.withDefaults()
	if c.B <= 0 || c.SQ <= 0 || c.HQ <= 0 || c.SK < 0 || c.TopK < 0 || c.ExtraTopK < 0 {
		return nil, fmt.Errorf("sparse decode case %s: bad dims", c.Name())
	}
	r := testutil.RNG(c.Seed ^ uint64(c.B*1_000_003+c.SQ*10_007+c.HQ*101+c.SK*7+c.TopK))
	cache, pos, err := fp8Cache(r, c.B, c.SK, c.PageSize)
	if err != nil {
		return nil, err
	}
	in := &SparseDecodeInput{
		Case:  c,
		Q:     mla.Query{Data: clamp1(testutil.Normal(r, c.B*c.SQ*c.HQ*mla.HeadDim, 0, 1)), B: c.B, SQ: c.SQ, HQ: c.HQ},
		Cache: cache, TopK: c.TopK,
		Indices: sparseRows(r, pos, c.SQ, c.TopK, c.Dup),
		Opts:    mla.SparseDecodeOptions{Scale: c.Scale},
	}
	if c.AllInvalid {
		for k := range c.SQ * c.TopK {
			in.Indices[k] = -1
		}
	}
	if c.Varlen {
		in.Opts.TopkLength = make([]int32, c.B)
		for i := range c.B {
			in.Opts.TopkLength[i] = int32(r.IntN(c.TopK + 1))
		}
		if c.AllInvalid {
			in.Opts.TopkLength[0] = 0
		}
	}
	if c.Sink {
		in.Opts.AttnSink = attnSinks(r, c.HQ)
	}
	if c.ExtraTopK > 0 {
		ec, epos, err := fp8Cache(r, c.B, max(c.SK/2, 1), 61)
		if err != nil {
			return nil, err
		}
		in.Opts.ExtraCache, in.Opts.ExtraTopK = ec, c.ExtraTopK
		in.Opts.ExtraIndices = sparseRows(r, epos, c.SQ, c.ExtraTopK, c.Dup)
		if c.Varlen {
			in.Opts.ExtraTopkLength = make([]int32, c.B)
			for i := range c.B {
				in.Opts.ExtraTopkLength[i] = int32(r.IntN(c.ExtraTopK + 1))
			}
		}
	}
	return in, nil
}

// e4m3 decodes an E4M3 (fn) code from its bits, independently of package
// tensor: sign, 4-bit exponent (bias 7), 3-bit mantissa, NaN at S.1111.111.
func e4m3(b byte) float64 {
	s := 1.0
	if b&0x80 != 0 {
		s = -1
	}
	e, m := int(b>>3&0xF), float64(b&7)
	switch {
	case e == 15 && m == 7:
		return math.NaN()
	case e == 0:
		return s * math.Ldexp(m/8, -6)
	}
	return s * math.Ldexp(1+m/8, e-7)
}

// record decodes token index t of an FP8 cache into float64, from the
// bytes, per the V3.2 layout.
func record(c *mla.FP8Cache, data []byte, t int) []float64 {
	off := c.Offset(t/c.PageSize, t%c.PageSize)
	b := data[off : off+mla.FP8BytesPerToken]
	k := make([]float64, mla.HeadDim)
	for i := range 512 {
		k[i] = e4m3(b[i]) * float64(math.Float32frombits(binary.LittleEndian.Uint32(b[512+4*(i/128):])))
	}
	for i := range 64 {
		k[512+i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[528+2*i:])) << 16))
	}
	return k
}

// attend is one head's softmax attention in float64: scores over keys, out
// over their first dv channels scaled by 1/(1+exp(sink−lse)) (upstream's
// sink), with upstream's conventions for no keys (out 0, max −Inf, lse
// +Inf). NaN channels of a gathered key count as 0, as in upstream's
// reference.
func attend(q []float32, keys [][]float64, scale float64, sink float64, hasSink bool, dv int, out []float64) (mx, lse float64) {
	if len(keys) == 0 {
		return math.Inf(-1), math.Inf(1)
	}
	z := make([]float64, len(keys))
	mx = math.Inf(-1)
	for t, k := range keys {
		var s float64
		for c, v := range q {
			if kc := k[c]; kc == kc {
				s += float64(v) * kc
			}
		}
		z[t] = s * scale
		mx = max(mx, z[t])
	}
	var l float64
	for _, v := range z {
		l += math.Exp(v - mx)
	}
	lse = mx + math.Log(l)
	f := 1.0
	if hasSink {
		f = 1 / (1 + math.Exp(sink-lse))
	}
	for t, k := range keys {
		p := math.Exp(z[t]-lse) * f
		for c := range dv {
			if kc := k[c]; kc == kc {
				out[c] += p * kc
			}
		}
	}
	return mx, lse
}

// SparseDecode computes the input's sparse decode in float64 as upstream's
// ref_sparse_attn_decode does, from the arguments (not in.Case): the valid
// main entries then the valid extra entries of each row, decoded straight
// from the cache bytes. It returns out [B, SQ, HQ, 512] and lse [B, HQ, SQ],
// or the validation error of mla.NewSparseDecodeProblem.
func SparseDecode(in *SparseDecodeInput) (out, lse []float64, err error) {
	p, err := mla.NewSparseDecodeProblem(in.Q, in.Cache, in.Indices, in.TopK, &in.Opts)
	if err != nil {
		return nil, nil, err
	}
	dv := p.HeadDimV
	out = make([]float64, p.B*p.SQ*p.HQ*dv)
	lse = make([]float64, p.B*p.HQ*p.SQ)
	data, err := tensor.HostSlice(p.Cache.Data)
	if err != nil {
		return nil, nil, err
	}
	var extra []byte
	if p.ExtraCache != nil {
		if extra, err = tensor.HostSlice(p.ExtraCache.Data); err != nil {
			return nil, nil, err
		}
	}
	for b := range p.B {
		for j := range p.SQ {
			var keys [][]float64
			for k := range int(p.TopkLength[b]) {
				if t := p.Indices[(b*p.SQ+j)*p.TopK+k]; t != -1 {
					keys = append(keys, record(p.Cache, data, int(t)))
				}
			}
			if p.ExtraCache != nil {
				for k := range int(p.ExtraTopkLength[b]) {
					if t := p.ExtraIndices[(b*p.SQ+j)*p.ExtraTopK+k]; t != -1 {
						keys = append(keys, record(p.ExtraCache, extra, int(t)))
					}
				}
			}
			for h := range p.HQ {
				var sink float64
				if p.AttnSink != nil {
					sink = float64(p.AttnSink[h])
				}
				q := p.Q[((b*p.SQ+j)*p.HQ+h)*mla.HeadDim:][:mla.HeadDim]
				_, l := attend(q, keys, float64(p.Scale), sink, p.AttnSink != nil, dv, out[((b*p.SQ+j)*p.HQ+h)*dv:][:dv])
				lse[(b*p.HQ+h)*p.SQ+j] = l
			}
		}
	}
	return out, lse, nil
}

// SparsePrefillCase is one sparse prefill problem of the grid ported from
// FlashMLA's sparse prefill test. Zero DQK means 576, zero Scale upstream's
// test scale 0.5 (a smaller one keeps wide rows from being one-hot).
type SparsePrefillCase struct {
	SQ, HQ, SKV, TopK int
	HKV               int // KV heads (0 means 1, upstream's only value)
	DQK               int
	Sink              bool // attn_sink as in SparseDecodeCase
	TopkLength        bool // topk_length[i] drawn from [0, topk]
	AllInvalid        bool // every index of every row invalid
	Scale             float32
	Seed              uint64
}

// Name returns a readable, unique name such as "sq62_hq128_skv1840_topk256_d576_sink".
func (c SparsePrefillCase) Name() string {
	c = c.withDefaults()
	n := fmt.Sprintf("sq%d_hq%d_skv%d_topk%d_d%d", c.SQ, c.HQ, c.SKV, c.TopK, c.DQK)
	if c.HKV != 1 {
		n += fmt.Sprintf("_hkv%d", c.HKV)
	}
	for _, f := range []struct {
		on bool
		s  string
	}{{c.Sink, "_sink"}, {c.TopkLength, "_topklen"}, {c.AllInvalid, "_allinvalid"}} {
		if f.on {
			n += f.s
		}
	}
	return n
}

func (c SparsePrefillCase) withDefaults() SparsePrefillCase {
	if c.DQK == 0 {
		c.DQK = mla.HeadDim
	}
	if c.Scale == 0 {
		c.Scale = 0.5
	}
	if c.HKV == 0 {
		c.HKV = 1
	}
	return c
}

// SparsePrefillInput is a built case: the arguments of mla.SparsePrefill.
type SparsePrefillInput struct {
	Case SparsePrefillCase
	In   mla.SparsePrefillInput
	Opts mla.SparsePrefillOptions
}

// Build makes the case's input deterministically from its Seed: q and kv ~
// randn/10 plus a per-tensor offset, clamped to ±10; each index row holds
// unique rows of kv, and where s_kv < topk (or AllInvalid) the rest are
// upstream's invalid fillers.
func (c SparsePrefillCase) Build() (*SparsePrefillInput, error) {
	c = c.withDefaults()
	if c.SQ <= 0 || c.HQ <= 0 || c.SKV < 0 || c.TopK < 0 || c.HKV <= 0 {
		return nil, fmt.Errorf("sparse prefill case %s: bad dims", c.Name())
	}
	r := testutil.RNG(c.Seed ^ uint64(c.SQ*10_007+c.HQ*101+c.SKV*7+c.TopK))
	gen := func(n int) []float32 {
		x := testutil.Normal(r, n, 0.02*r.NormFloat64(), 0.1)
		for i, v := range x {
			x[i] = max(-10, min(10, v))
		}
		return x
	}
	in := &SparsePrefillInput{Case: c, In: mla.SparsePrefillInput{
		Q: gen(c.SQ * c.HQ * c.DQK), SQ: c.SQ, HQ: c.HQ,
		KV: gen(c.SKV * c.HKV * c.DQK), SKV: c.SKV, HKV: c.HKV, DQK: c.DQK,
		Indices: make([]int32, c.SQ*c.HKV*c.TopK), TopK: c.TopK,
	}, Opts: mla.SparsePrefillOptions{Scale: c.Scale}}
	fillers := append([]int32{int32(c.SKV)}, InvalidPrefillIndices...)
	for i := range c.SQ * c.HKV {
		row := in.In.Indices[i*c.TopK:][:c.TopK]
		perm := r.Perm(c.SKV)
		for k := range row {
			if k < len(perm) && !c.AllInvalid {
				row[k] = int32(perm[k])
			} else {
				row[k] = fillers[r.IntN(len(fillers))]
			}
		}
		r.Shuffle(len(row), func(a, b int) { row[a], row[b] = row[b], row[a] })
	}
	if c.TopkLength {
		in.Opts.TopkLength = make([]int32, c.SQ)
		for i := range c.SQ {
			in.Opts.TopkLength[i] = int32(r.IntN(c.TopK + 1))
		}
	}
	if c.Sink {
		in.Opts.AttnSink = attnSinks(r, c.HQ)
	}
	return in, nil
}

// SparsePrefill computes the input's sparse prefill in float64 as
// upstream's ref_sparse_attn_fwd does, from the arguments. It returns out
// [SQ, HQ, d_v], maxLogits and lse [SQ, HQ], or the validation error of
// mla.NewSparsePrefillProblem.
func SparsePrefill(in *SparsePrefillInput) (out, maxLogits, lse []float64, err error) {
	p, err := mla.NewSparsePrefillProblem(in.In, &in.Opts)
	if err != nil {
		return nil, nil, nil, err
	}
	d, dv, hpk := p.DQK, p.HeadDimV, p.HQ/p.HKV
	out = make([]float64, p.SQ*p.HQ*dv)
	maxLogits = make([]float64, p.SQ*p.HQ)
	lse = make([]float64, p.SQ*p.HQ)
	for i := range p.SQ {
		for g := range p.HKV {
			var keys [][]float64
			for k := range int(p.TopkLength[i]) {
				if t := p.Indices[(i*p.HKV+g)*p.TopK+k]; t >= 0 && int(t) < p.SKV {
					keys = append(keys, testutil.F64(p.KV[(int(t)*p.HKV+g)*d:][:d]))
				}
			}
			for hh := range hpk {
				h := g*hpk + hh
				var sink float64
				if p.AttnSink != nil {
					sink = float64(p.AttnSink[h])
				}
				m, l := attend(p.Q[(i*p.HQ+h)*d:][:d], keys, float64(p.Scale), sink, p.AttnSink != nil, dv, out[(i*p.HQ+h)*dv:][:dv])
				maxLogits[i*p.HQ+h], lse[i*p.HQ+h] = m, l
			}
		}
	}
	return out, maxLogits, lse, nil
}

// closeOr compares got with want elementwise as kernelkit's
// check_is_allclose does: pass if |diff| < abs or |diff| < rel·|want|;
// ±Inf and NaN must match exactly.
func closeOr(name string, got []float32, want []float64, abs, rel float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: length %d, want %d", name, len(got), len(want))
	}
	return eachClose(name, got, want,
		func(d, w float64) bool { return d < abs || d < rel*math.Abs(w) },
		func(d, _ float64) string {
			return fmt.Sprintf("|diff| %.3g: not below %g nor %g relative", d, abs, rel)
		})
}

func calcDiff(name string, got []float32, want []float64, tol float64) error {
	if d := testutil.CalcDiff(testutil.F64(got), want); d > tol || d != d {
		return fmt.Errorf("%s: calc_diff %.3g > %g", name, d, tol)
	}
	return nil
}

// CheckSparseDecode holds a backend's sparse decode out and lse to the
// oracle's with upstream's tolerances (the SparseDecode* constants).
func CheckSparseDecode(out, lse []float32, refOut, refLSE []float64) error {
	if err := closeOr("out", out, refOut, SparseDecodeOutAbs, SparseDecodeOutRel); err != nil {
		return err
	}
	if err := calcDiff("out", out, refOut, SparseDecodeOutCalcDiff); err != nil {
		return err
	}
	return closeOr("lse", lse, refLSE, SparseDecodeLSEAbs, SparseDecodeLSERel)
}

// CheckSparsePrefill holds a backend's sparse prefill outputs to the
// oracle's with upstream's tolerances (the SparsePrefill* constants;
// max_logits uses the lse tolerances, as upstream).
func CheckSparsePrefill(out, maxLogits, lse []float32, refOut, refMax, refLSE []float64) error {
	if err := closeOr("out", out, refOut, SparsePrefillOutAbs, SparsePrefillOutRel); err != nil {
		return err
	}
	if err := calcDiff("out", out, refOut, SparsePrefillOutCalcDiff); err != nil {
		return err
	}
	if err := closeOr("max_logits", maxLogits, refMax, SparsePrefillLSEAbs, SparsePrefillLSERel); err != nil {
		return err
	}
	return closeOr("lse", lse, refLSE, SparsePrefillLSEAbs, SparsePrefillLSERel)
}

// attnSinks draws hq attention sinks from r: standard normal, with each head
// then set to +Inf (probability 0.31) or -Inf (0.31) to cover upstream's
// infinite-sink cases.
func attnSinks(r *rand.Rand, hq int) []float32 {
	sinks := testutil.Normal(r, hq, 0, 1)
	for h := range sinks {
		switch u := r.Float64(); {
		case u < 0.31:
			sinks[h] = float32(math.Inf(1))
		case u < 0.62:
			sinks[h] = float32(math.Inf(-1))
		}
	}
	return sinks
}
