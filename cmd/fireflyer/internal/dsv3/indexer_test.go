package dsv3

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	gemmcpu "github.com/fireflyer-go/fireflyer/gemm/cpu"
	gemmref "github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestPublishedV32(t *testing.T) {
	c := PublishedV32()
	if !c.IsV32() || c.IndexNHeads != 64 || c.IndexHeadDim != 128 || c.IndexTopK != 2048 || c.ModelType != "deepseek_v32" {
		t.Fatalf("V3.2 config: %+v", c)
	}
	if Published().IsV32() {
		t.Fatal("DeepSeek-V3's config reads as V3.2")
	}
	if s := c.IndexerSoftmaxScale(); math.Abs(s-1/math.Sqrt(128)) > 1e-16 {
		t.Fatalf("indexer softmax_scale %v", s)
	}
	s, err := c.Scaled(8)
	if err != nil || s.IndexNHeads != 8 || s.IndexHeadDim != 128 || s.IndexTopK != 256 {
		t.Fatalf("scaled 8: %+v %v", s, err)
	}
	if s, _ := c.Scaled(64); s.IndexNHeads != 1 || s.IndexTopK != 64 {
		t.Fatalf("scaled 64: heads %d, topk %d", s.IndexNHeads, s.IndexTopK)
	}
	for _, f := range []func(*Config){
		func(c *Config) { c.IndexHeadDim = 64 },
		func(c *Config) { c.IndexNHeads = 0 },
		func(c *Config) { c.IndexTopK = -1 },
		func(c *Config) { c.IndexTopK = 0; c.IndexNHeads = 3 },
	} {
		b := PublishedV32()
		f(&b)
		if err := b.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", b, err)
		}
	}
}

// TestHadamardMatchesMatrix: the fast transform equals x·H/√n with the
// Sylvester matrix H[i][j] = (−1)^popcount(i&j), and preserves norms.
func TestHadamardMatchesMatrix(t *testing.T) {
	r := testutil.RNG(1)
	for _, n := range []int{1, 2, 8, 128} {
		x := testutil.F64(testutil.Normal(r, n, 0, 1))
		got := append([]float64(nil), x...)
		if err := Hadamard(got); err != nil {
			t.Fatal(err)
		}
		var nx, ng float64
		for j := 0; j < n; j++ {
			var want float64
			for i := 0; i < n; i++ {
				s := 1.0
				if bits.OnesCount(uint(i&j))%2 == 1 {
					s = -1
				}
				want += x[i] * s
			}
			want /= math.Sqrt(float64(n))
			if math.Abs(got[j]-want) > 1e-12 {
				t.Fatalf("n=%d: y[%d] = %v, want %v", n, j, got[j], want)
			}
			nx, ng = nx+x[j]*x[j], ng+got[j]*got[j]
		}
		if math.Abs(nx-ng) > 1e-9*nx {
			t.Fatalf("n=%d: norm² %v → %v", n, nx, ng)
		}
	}
	if err := Hadamard(make([]float64, 96)); !errors.Is(err, ErrConfig) {
		t.Fatalf("96 channels: %v", err)
	}
}

func TestLayerNorm(t *testing.T) {
	y := LayerNorm([]float64{1, 2, 3, 6}, []float32{1, 2, 1, 1}, []float32{0, 0, 0.5, 0}, 0)
	// mean 3, var (4+1+0+9)/4 = 3.5
	s := math.Sqrt(3.5)
	want := []float64{-2 / s, -2 / s, 0.5, 3 / s}
	for i := range want {
		if math.Abs(y[i]-want[i]) > 1e-15 {
			t.Fatalf("LayerNorm = %v, want %v", y, want)
		}
	}
}

// TestActQuantGolden pins act_quant(x, 128, "ue8m0"): amax 1 gives
// 1·fp32(1/448) = 0x3B124925, mantissa ≠ 0, so 2^(118−127+1) = 2^−8; a
// zero block gives the 1e-4 floor's 2^−22; codes are E4M3(x/scale).
func TestActQuantGolden(t *testing.T) {
	x := make([]float32, 128)
	x[0], x[1], x[2] = 1, -0.5, 0.3
	codes := make([]tensor.E4M3, 128)
	if s := ActQuant(codes, x); s != 1.0/256 {
		t.Fatalf("scale %v, want 2^-8", s)
	}
	if codes[0].Float32() != 256 || codes[1].Float32() != -128 || codes[2] != tensor.E4M3FromFloat32(0.3*256) || codes[3] != 0 {
		t.Fatalf("codes %v %v %v %v", codes[0], codes[1], codes[2], codes[3])
	}
	if s := ActQuant(codes, make([]float32, 128)); s != float32(math.Ldexp(1, -22)) {
		t.Fatalf("zero block scale %v, want 2^-22", s)
	}
	// amax 448: 448·fp32(1/448) is exactly 1, a power of two: scale 1
	x[0] = 448
	if s := ActQuant(codes, x); s != 1 || codes[0].Float32() != 448 {
		t.Fatalf("amax 448: scale %v, code %v", s, codes[0].Float32())
	}
	// just above 448 the scale doubles and nothing saturates
	x[0] = 449
	if s := ActQuant(codes, x); s != 2 || codes[0].Float32() != 224 {
		t.Fatalf("amax 449: scale %v, code %v", s, codes[0].Float32())
	}
}

// TestTopKTieRule: the fast path's selection (mla.TopKRow) and the
// reference's (TopK64) share one rule: descending, ties to the lower
// position, −Inf and NaN never chosen, −1 padding.
func TestTopKTieRule(t *testing.T) {
	inf := float32(math.Inf(-1))
	nan := float32(math.NaN())
	l := []float32{1, 3, 3, inf, 2, nan, 3}
	dst := make([]int32, 6)
	mla.TopKRow(dst, l)
	if want := []int32{1, 2, 6, 4, 0, -1}; !slices.Equal(dst, want) {
		t.Fatalf("TopKRow = %v, want %v", dst, want)
	}
	if got := TopK64([]float64{1, 3, 3, 2, 3}, 3); !slices.Equal(got, []int32{1, 2, 4}) {
		t.Fatalf("TopK64 = %v", got)
	}
}

// FuzzTopK holds mla.TopKRow to the sort-based TopK64 on finite logits with
// many ties: the demo's check compares the two.
func FuzzTopK(f *testing.F) {
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}, 4)
	f.Add([]byte{7, 7, 7, 7}, 9)
	f.Add([]byte{}, 1)
	f.Fuzz(func(t *testing.T, b []byte, k int) {
		k = k%300 + 1
		if k < 1 {
			k += 300
		}
		l := make([]float32, len(b))
		l64 := make([]float64, len(b))
		for i, v := range b {
			l[i] = float32(int(v%16)-8) / 4
			l64[i] = float64(l[i])
		}
		dst := make([]int32, k)
		mla.TopKRow(dst, l)
		want := TopK64(l64, k)
		for i := range dst {
			w := int32(-1)
			if i < len(want) {
				w = want[i]
			}
			if dst[i] != w {
				t.Fatalf("TopK(%v, %d) = %v, want %v", l, k, dst, want)
			}
		}
	})
}

// TestIndexerMatchesReference runs the fast indexer (FP8 GEMMs, cache,
// logits) and its float64 reference on random weights and holds the
// logits to calc_diff < 5e-3 and the top-k sets to near-ties.
func TestIndexerMatchesReference(t *testing.T) {
	c, err := PublishedV32().Scaled(16)
	if err != nil {
		t.Fatal(err)
	}
	r := testutil.RNG(3)
	hid, H, d := c.HiddenSize, c.IndexNHeads, c.IndexHeadDim
	lw := randomLayer(c, r)
	lw.Indexer = &IndexerLinear{WQB: randLinear(r, H*d, c.QLoraRank), WK: randLinear(r, d, hid),
		KNormW: ones(d), KNormB: make([]float32, d), WeightsProj: randLinear(r, H, hid)}
	fp8 := func(l Linear) *tensor.FP8Matrix {
		m, err := tensor.QuantizePerBlock(l.W, l.Out, l.In, tensor.QuantOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := tensor.Dequantize(m)
		copy(l.W, v) // the reference sees the dequantized weights
		return m
	}
	w := &Weights{InputNorm: lw.InputNorm, QANorm: lw.QANorm, QA: fp8(lw.QA), Indexer: &IndexerWeights{
		WQB: fp8(lw.Indexer.WQB), WK: fp8(lw.Indexer.WK), KNormW: lw.Indexer.KNormW, KNormB: lw.Indexer.KNormB, WeightsProj: lw.Indexer.WeightsProj.W}}
	be := gemm.Backend(gemmcpu.New(gemmcpu.Options{}))
	ctx := context.Background()
	const n = 150
	xs := testutil.Normal(r, (n+1)*hid, 0, 1)
	cache, _ := gemm.NewIndexerCache(3, 64, d)
	bt := [][]int32{{2, 0, 1}}
	var flops int64
	hq, err := NormQuant(c, w, xs, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if err := IndexerKeys(ctx, be, c, w.Indexer, hq, func(i int) int { return i }, cache,
		func(i int) (int, int) { return int(bt[0][i/64]), i % 64 }, &flops); err != nil {
		t.Fatal(err)
	}
	x := xs[n*hid:]
	h := append([]float32(nil), x...)
	RMSNormRows(h, hid, w.InputNorm, c.RMSNormEps)
	hq1, _ := tensor.QuantizePerToken(h, 1, hid, tensor.QuantOptions{})
	qa, _ := LinearQ(ctx, be, hq1, w.QA, &flops)
	RMSNormRows(qa, c.QLoraRank, w.QANorm, c.RMSNormEps)
	q, wts, err := IndexerQueries(ctx, be, c, w.Indexer, qa, h, 1, func(int) int { return n }, &flops)
	if err != nil {
		t.Fatal(err)
	}
	logits, _, err := IndexerLogits(ctx, gemmref.New(), q, wts, 1, H, cache, bt, []int32{n + 1}, 192)
	if err != nil {
		t.Fatal(err)
	}
	for s := n + 1; s < 192; s++ {
		if !math.IsInf(float64(logits[s]), -1) {
			t.Fatalf("logit %d past the context is %v, want -Inf", s, logits[s])
		}
	}
	ref := NewReference(c, lw)
	keys := make([]IndexKey, n)
	for p := range keys {
		keys[p] = ref.IndexerKey(xs[p*hid:(p+1)*hid], p)
	}
	want, _ := ref.IndexerScores(x, keys)
	if diff := testutil.CalcDiff(testutil.F64(logits[:n+1]), want); !(diff < 5e-3) {
		t.Fatalf("indexer logits calc_diff %v", diff)
	}
	// The snapshot demo's interleaved RoPE gives other logits: the check
	// tells the layouts apart.
	inv := RopeInvFreq(c)
	interleaved := func(v []float64, pos int) IndexKey {
		mla.RotatePairs(v[:c.QKRopeHeadDim], inv, pos)
		if err := Hadamard(v); err != nil {
			t.Fatal(err)
		}
		k, s := quant64(v)
		return IndexKey{K: k, Scale: s}
	}
	li := lw.Indexer
	hn := func(p int) []float64 { return RMSNorm(testutil.F64(xs[p*hid:(p+1)*hid]), lw.InputNorm, c.RMSNormEps) }
	qr := RMSNorm(lw.QA.MatVec64(hn(n)), lw.QANorm, c.RMSNormEps)
	qall, wp := li.WQB.MatVec64(qr), li.WeightsProj.MatVec64(hn(n))
	wrong := make([]float64, n+1)
	for p := range wrong {
		k := interleaved(LayerNorm(li.WK.MatVec64(hn(p)), li.KNormW, li.KNormB, IndexerNormEps), p)
		for hd := 0; hd < H; hd++ {
			q := interleaved(append([]float64(nil), qall[hd*d:(hd+1)*d]...), n)
			var dot float64
			for i := range q.K {
				dot += q.K[i] * k.K[i]
			}
			wrong[p] += wp[hd] / math.Sqrt(float64(H)) * q.Scale / math.Sqrt(float64(d)) * math.Max(dot, 0) * k.Scale
		}
	}
	if diff := testutil.CalcDiff(testutil.F64(logits[:n+1]), wrong); !(diff > 0.05) {
		t.Fatalf("interleaved-RoPE logits: calc_diff %v against the fast path, want > 0.05", diff)
	} else {
		t.Logf("interleaved RoPE: calc_diff %.3g", diff)
	}
}

// TestTokenSparse: keeping every position is Token; keeping only the new
// token is the single-key closed form; keeping none gives no attention.
func TestTokenSparse(t *testing.T) {
	c, _ := Published().Scaled(64)
	r := testutil.RNG(11)
	hid := c.HiddenSize
	w := randomLayer(c, r)
	var prefix []CacheRow
	for p := 0; p < 9; p++ {
		h := RMSNorm(testutil.F64(testutil.Normal(r, hid, 0, 1)), w.InputNorm, c.RMSNormEps)
		prefix = append(prefix, KVRow(c, w, h, p))
	}
	x := testutil.Normal(r, hid, 0, 1)
	topk := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	ref := NewReference(c, w)
	dense := ref.Token(x, prefix, topk)
	all := ref.TokenSparse(x, prefix, []int32{9, 3, -1, 0, 1, 2, 4, 5, 6, 7, 8, 3}, topk)
	if d := testutil.CalcDiff(all.Attn, dense.Attn); d > 1e-15 {
		t.Fatalf("keeping every position: calc_diff %v against Token", d)
	}
	self := ref.TokenSparse(x, prefix, []int32{9, -1}, topk)
	// with one key the softmax is 1 and the output W_UV·c_kv of that key,
	// wherever it sits: the same as the token with no prefix at all
	single := ref.Token(x, nil, topk)
	if d := testutil.CalcDiff(self.Attn, single.Attn); d > 1e-12 {
		t.Fatalf("only the token itself kept: calc_diff %v against no prefix", d)
	}
	none := ref.TokenSparse(x, prefix, []int32{-1, -1}, topk)
	for _, v := range none.Attn {
		if v != 0 {
			t.Fatalf("no key kept: attention %v, want 0", v)
		}
	}
	if d := testutil.CalcDiff(self.Attn, dense.Attn); !(d > 1e-3) {
		t.Fatalf("attending one key vs ten: calc_diff %v, want a real difference", d)
	}
}

// FuzzActQuant: for any finite block, act_quant's scale is a power of two
// with |x/scale| ≤ 448 (nothing saturates) and below 2·max(amax, 1e-4)/448
// (at most one binade of range unused), and every code is E4M3(x/scale).
func FuzzActQuant(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 191}) // 1, -0.5
	f.Add([]byte{0, 0, 224, 67})               // 448
	f.Add([]byte{1, 0, 0, 0})                  // the smallest subnormal
	f.Fuzz(func(t *testing.T, b []byte) {
		x := make([]float32, 0, 128)
		for i := 0; i+4 <= len(b) && len(x) < 128; i += 4 {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
			if v != v || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 1e30 {
				continue
			}
			x = append(x, v)
		}
		codes := make([]tensor.E4M3, len(x))
		s := ActQuant(codes, x)
		fr, _ := math.Frexp(float64(s))
		if !(s > 0) || fr != 0.5 {
			t.Fatalf("scale %v is not a positive power of two", s)
		}
		var amax float64
		for i, v := range x {
			amax = math.Max(amax, math.Abs(float64(v)))
			if q := float64(v) / float64(s); math.Abs(q) > 448 {
				t.Fatalf("x[%d]/scale = %v saturates", i, q)
			}
			if codes[i] != tensor.E4M3FromFloat32(v/s) {
				t.Fatalf("code %d: %v, want E4M3(%v)", i, codes[i], v/s)
			}
		}
		if a := math.Max(amax, 1e-4); float64(s) >= 2*a/448*(1+1e-6) {
			t.Fatalf("scale %v wastes range: amax %v", s, amax)
		}
	})
}
