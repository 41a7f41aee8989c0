package mla_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestNaiveVsAbsorbed builds a DeepSeek-V3-shaped layer (kv_lora_rank 512,
// nope 128, rope 64, v 128) with random kv_b_proj weights, runs the
// un-absorbed MHA in float64 and the absorbed MQA through Decode (F32 cache,
// both backends), and requires agreement within 1e-5 relative (max |diff| /
// max |naive|) for out and lse, with the model's softmax scale
// 1/√192·mscale².
func TestNaiveVsAbsorbed(t *testing.T) {
	const (
		heads, sq, rope = 8, 2, mla.QKRopeHeadDim
		rank, dn, dv    = mla.KVLoraRank, mla.QKNopeHeadDim, mla.VHeadDim
	)
	lens := []int{37, 130, 1}
	r := testutil.RNG(7)
	w := &mla.KVB{Heads: heads, NopeDim: dn, VDim: dv, Rank: rank, W: f64(testutil.Normal(r, heads*(dn+dv)*rank, 0, 1/math.Sqrt(rank)))}
	b := len(lens)
	cache, err := mla.NewPagedCache(tensor.F32, 8, 64, 1, mla.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	cache.Fill(float32(math.NaN()))
	bt := [][]int32{{5, 1}, {0, 2, 7}, {3}}
	qNope := f64(testutil.Normal(r, b*sq*heads*dn, 0, 1))
	qPe := f64(testutil.Normal(r, b*sq*heads*rope, 0, 1))
	var naiveOut, naiveLSE []float64
	seqlens := make([]int32, b)
	for i, l := range lens {
		seqlens[i] = int32(l)
		// The cache holds float32 values; the naive path uses the same ones.
		c := f64(testutil.Normal(r, l*rank, 0, 1))
		kPe := f64(testutil.Normal(r, l*rope, 0, 1))
		row := make([]float32, mla.HeadDim)
		for tk := range l {
			mla.RoPE(kPe[tk*rope:(tk+1)*rope], tk, 10000)
			for e := range rank {
				row[e] = float32(c[tk*rank+e])
				c[tk*rank+e] = float64(row[e])
			}
			for e := range rope {
				row[rank+e] = float32(kPe[tk*rope+e])
				kPe[tk*rope+e] = float64(row[rank+e])
			}
			if err := cache.SetRow(int(bt[i][tk/64]), tk%64, 0, row); err != nil {
				t.Fatal(err)
			}
		}
		qn := qNope[i*sq*heads*dn : (i+1)*sq*heads*dn]
		qp := qPe[i*sq*heads*rope : (i+1)*sq*heads*rope]
		for j := range sq {
			for h := range heads {
				mla.RoPE(qp[(j*heads+h)*rope:(j*heads+h+1)*rope], l-sq+j, 10000)
			}
		}
		o, lse, err := mla.NaiveMLA(w, qn, qp, c, kPe, sq, l, rope, float64(mla.DeepSeekV3Scale), true)
		if err != nil {
			t.Fatal(err)
		}
		naiveOut = append(naiveOut, o...)
		// lse [heads][sq] per request → [b][heads][sq] by appending.
		naiveLSE = append(naiveLSE, lse...)
	}
	q, err := mla.AbsorbQ(w, qNope, qPe, rope)
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range []mla.Backend{mla.NewRef(), mla.Default()} {
		t.Run(be.Name(), func(t *testing.T) {
			out, lse, err := mla.Decode(context.Background(), be, mla.Query{Data: q, B: b, SQ: sq, HQ: heads}, cache, bt, seqlens,
				&mla.Options{Scale: mla.DeepSeekV3Scale, Causal: true})
			if err != nil {
				t.Fatal(err)
			}
			o, err := mla.UnabsorbOut(w, out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("relative error out %.3g, lse %.3g", relErr(o, naiveOut), relErr(f64(lse), naiveLSE))
			if rel := relErr(o, naiveOut); rel > 1e-5 {
				t.Errorf("out: relative error %.3g > 1e-5", rel)
			}
			if rel := relErr(f64(lse), naiveLSE); rel > 1e-5 {
				t.Errorf("lse: relative error %.3g > 1e-5", rel)
			}
			// The causal mask leaves request 2 (length 1) with one empty row.
			if !math.IsInf(float64(lse[(2*heads+0)*sq+0]), 1) {
				t.Errorf("length-1 request, first of 2 query tokens: lse %v, want +Inf", lse[(2*heads)*sq])
			}
		})
	}
}

// relErr is max|a−b| / max|b| over finite entries; infinities must match.
func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range b {
		if math.IsInf(b[i], 0) || math.IsInf(a[i], 0) {
			if a[i] != b[i] {
				return math.Inf(1)
			}
			continue
		}
		num = max(num, math.Abs(a[i]-b[i]))
		den = max(den, math.Abs(b[i]))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func f64(x []float32) []float64 { return testutil.F64(x) }

// FuzzNaiveShapes feeds arbitrary dims and slice lengths to the naive and
// absorption helpers: an error or outputs of the documented sizes, never a
// panic.
func FuzzNaiveShapes(f *testing.F) {
	f.Add(uint8(2), uint8(4), uint8(3), uint8(8), uint8(2), uint8(5), uint8(4), uint16(0))
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint16(7))
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(2), uint16(3))
	f.Fuzz(func(t *testing.T, heads, dn, dv, rank, sq, l, rope uint8, skew uint16) {
		h, n, v, r, s, ln, rp := int(heads%4), int(dn%6), int(dv%6), int(rank%9), int(sq%3), int(l%7), int(rope%5)
		k := func(i int) int { return int(skew >> i & 1) } // perturb one length by one
		w := &mla.KVB{Heads: h, NopeDim: n, VDim: v, Rank: r, W: make([]float64, h*(n+v)*r+k(0))}
		for i := range w.W {
			w.W[i] = float64(i%5) * 0.1
		}
		qn := make([]float64, s*h*n+k(1))
		qp := make([]float64, s*h*rp+k(2))
		c := make([]float64, ln*r+k(3))
		kp := make([]float64, ln*rp+k(4))
		if out, lse, err := mla.NaiveMLA(w, qn, qp, c, kp, s, ln, rp, 0.1, skew&32 != 0); err == nil {
			if len(out) != s*h*v || len(lse) != h*s {
				t.Fatalf("NaiveMLA sizes %d %d", len(out), len(lse))
			}
		}
		if q, err := mla.AbsorbQ(w, qn, qp, rp); err == nil && len(q) != len(qn)/n*(r+rp) {
			t.Fatalf("AbsorbQ size %d", len(q))
		}
		if o, err := mla.UnabsorbOut(w, make([]float32, s*h*r+k(5))); err == nil && len(o) != (s*h*r+k(5))/r*v {
			t.Fatalf("UnabsorbOut size %d", len(o))
		}
	})
}

// TestNaiveNilWeights: the float64 references report nil kv_b_proj weights
// as ErrShape instead of dereferencing them.
func TestNaiveNilWeights(t *testing.T) {
	if _, _, err := mla.NaiveMLA(nil, nil, nil, nil, nil, 1, 0, 64, 1, false); !errors.Is(err, mla.ErrShape) {
		t.Errorf("NaiveMLA: err %v; want ErrShape", err)
	}
	if _, err := mla.AbsorbQ(nil, nil, nil, 64); !errors.Is(err, mla.ErrShape) {
		t.Errorf("AbsorbQ: err %v; want ErrShape", err)
	}
	if _, err := mla.UnabsorbOut(nil, nil); !errors.Is(err, mla.ErrShape) {
		t.Errorf("UnabsorbOut: err %v; want ErrShape", err)
	}
	var w *mla.KVB
	if err := w.Check(); !errors.Is(err, mla.ErrShape) {
		t.Errorf("Check: err %v; want ErrShape", err)
	}
}
