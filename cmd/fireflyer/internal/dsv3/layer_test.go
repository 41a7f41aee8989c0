package dsv3

import (
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

func TestRMSNormAndRope(t *testing.T) {
	x := []float64{3, 4}
	y := RMSNorm(x, []float32{1, 2}, 0)
	r := math.Sqrt((9 + 16) / 2.0)
	if math.Abs(y[0]-3/r) > 1e-15 || math.Abs(y[1]-8/r) > 1e-15 {
		t.Fatalf("RMSNorm = %v", y)
	}
	c := Published()
	inv := RopeInvFreq(c)
	if len(inv) != 32 || inv[0] != 1 {
		t.Fatalf("inv freq %v", inv[:2])
	}
	v := make([]float64, 64)
	for i := range v {
		v[i] = float64(i%7) - 3
	}
	orig := append([]float64(nil), v...)
	mla.RotatePairs(v, inv, 0)
	for i := range v {
		if v[i] != orig[i] {
			t.Fatal("RoPE at position 0 must be the identity")
		}
	}
	mla.RotatePairs(v, inv, 37)
	for i := 0; i < 64; i += 2 {
		a := math.Hypot(v[i], v[i+1])
		b := math.Hypot(orig[i], orig[i+1])
		if math.Abs(a-b) > 1e-12 {
			t.Fatalf("pair %d: norm %v → %v", i/2, b, a)
		}
	}
	// first pair rotates by exactly pos radians
	want0 := orig[0]*math.Cos(37) - orig[1]*math.Sin(37)
	if math.Abs(v[0]-want0) > 1e-12 {
		t.Fatalf("pair 0: %v, want %v", v[0], want0)
	}
}

func randLinear(r interface{ NormFloat64() float64 }, out, in int) Linear {
	w := make([]float32, out*in)
	s := 1 / math.Sqrt(float64(in))
	for i := range w {
		w[i] = float32(r.NormFloat64() * s)
	}
	return Linear{Out: out, In: in, W: w}
}

func ones(n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// randomLayer draws a layer's weights for config c from r: unit norms, a
// zero bias, and linears with N(0, 1/in) entries.
func randomLayer(c Config, r interface{ NormFloat64() float64 }) *LayerWeights {
	hid, heads := c.HiddenSize, c.NumAttentionHeads
	w := &LayerWeights{
		InputNorm: ones(hid), QA: randLinear(r, c.QLoraRank, hid), QANorm: ones(c.QLoraRank),
		QB: randLinear(r, heads*192, c.QLoraRank), KVA: randLinear(r, 576, hid), KVANorm: ones(512),
		KVB: randLinear(r, heads*256, 512), O: randLinear(r, hid, heads*128), PostNorm: ones(hid),
		Gate: randLinear(r, c.NRoutedExperts, hid), Bias: make([]float32, c.NRoutedExperts),
	}
	inter := c.MoEIntermediateSize
	mk := func() Expert {
		return Expert{Gate: randLinear(r, inter, hid), Up: randLinear(r, inter, hid), Down: randLinear(r, hid, inter)}
	}
	for i := 0; i < c.NRoutedExperts; i++ {
		w.Experts = append(w.Experts, mk())
	}
	w.Shared = mk()
	return w
}

// TestReferenceSingleKey checks the attention path against a closed form:
// with no prefix the only key is the token itself, so softmax is 1 and the
// head output is W_UV·c_kv.
func TestReferenceSingleKey(t *testing.T) {
	c, _ := Published().Scaled(64)
	r := testutil.RNG(5)
	hid, heads := c.HiddenSize, c.NumAttentionHeads
	w := randomLayer(c, r)
	x := testutil.Normal(r, hid, 0, 1)
	topk := []int32{0, 3, 5, 6, 9, 10, 12, 15}
	got := NewReference(c, w).Token(x, nil, topk)

	xd := testutil.F64(x)
	h := RMSNorm(xd, w.InputNorm, c.RMSNormEps)
	row := KVRow(c, w, h, 0)
	o := make([]float64, 0, heads*128)
	for hd := 0; hd < heads; hd++ {
		wuv := Linear{Out: 128, In: 512, W: w.KVB.W[(hd*256+128)*512 : (hd+1)*256*512]}
		o = append(o, wuv.MatVec64(row[:512])...)
	}
	want := w.O.MatVec64(o)
	if d := testutil.CalcDiff(got.Attn, want); d > 1e-14 {
		t.Fatalf("attention calc_diff %v", d)
	}
	for i := range got.Out {
		if math.Abs(got.Out[i]-(xd[i]+got.Attn[i]+got.MoE[i])) > 1e-12 {
			t.Fatal("Out != x + Attn + MoE")
		}
	}
}

// TestReferenceAbsorbedMatchesNaive holds the absorbed float64 attention of
// Reference to the un-absorbed form (mla.NaiveMLA: k_nope and v rebuilt from
// every cached latent through kv_b_proj) over a real prefix.
func TestReferenceAbsorbedMatchesNaive(t *testing.T) {
	c, _ := Published().Scaled(64)
	r := testutil.RNG(9)
	hid, heads := c.HiddenSize, c.NumAttentionHeads
	w := randomLayer(c, r)
	var prefix []CacheRow
	for p := 0; p < 37; p++ {
		h := RMSNorm(testutil.F64(testutil.Normal(r, hid, 0, 1)), w.InputNorm, c.RMSNormEps)
		prefix = append(prefix, KVRow(c, w, h, p))
	}
	x := testutil.Normal(r, hid, 0, 1)
	got := NewReference(c, w).Token(x, prefix, []int32{0, 1, 2, 3, 4, 5, 6, 7})

	h := RMSNorm(testutil.F64(x), w.InputNorm, c.RMSNormEps)
	q := w.QB.MatVec64(RMSNorm(w.QA.MatVec64(h), w.QANorm, c.RMSNormEps))
	rows := append(append([]CacheRow(nil), prefix...), KVRow(c, w, h, len(prefix)))
	nope, rope, lat := c.QKNopeHeadDim, c.QKRopeHeadDim, c.KVLoraRank
	inv := RopeInvFreq(c)
	var qNope, qPe, lats, kPe []float64
	for hd := 0; hd < heads; hd++ {
		qh := q[hd*(nope+rope) : (hd+1)*(nope+rope)]
		pe := append([]float64(nil), qh[nope:]...)
		mla.RotatePairs(pe, inv, len(rows)-1)
		qNope, qPe = append(qNope, qh[:nope]...), append(qPe, pe...)
	}
	for _, row := range rows {
		lats, kPe = append(lats, row[:lat]...), append(kPe, row[lat:]...)
	}
	o, _, err := mla.NaiveMLA(w.KVB64(c), qNope, qPe, lats, kPe, 1, len(rows), rope, c.SoftmaxScale(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := w.O.MatVec64(o)
	if d := testutil.CalcDiff(got.Attn, want); d > 1e-13 {
		t.Fatalf("absorbed vs naive calc_diff %v", d)
	}
	if math.Abs(got.Attn[0]-want[0]) > 1e-9*math.Max(1, math.Abs(want[0])) {
		t.Fatalf("element 0: %v vs %v", got.Attn[0], want[0])
	}
}
