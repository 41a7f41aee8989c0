package mla_test

import (
	"errors"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

// partial computes, in float64, softmax attention of one row over keys
// [lo, hi) and returns the float32 output and natural-log LSE (−Inf, 0 for
// an empty range).
func partial(s []float64, v [][]float64, lo, hi int) ([]float32, float32) {
	o := make([]float32, len(v[0]))
	if lo == hi {
		return o, float32(math.Inf(-1))
	}
	mx := math.Inf(-1)
	for _, x := range s[lo:hi] {
		mx = max(mx, x)
	}
	var sum float64
	acc := make([]float64, len(o))
	for t := lo; t < hi; t++ {
		w := math.Exp(s[t] - mx)
		sum += w
		for c := range acc {
			acc[c] += w * v[t][c]
		}
	}
	for c := range o {
		o[c] = float32(acc[c] / sum)
	}
	return o, float32(mx + math.Log(sum))
}

// TestCombineSplitEquivalence: merging [0,k) and [k,n) matches [0,n)
// within float32 rounding, for every k including the empty ends, and for a
// three-way split.
func TestCombineSplitEquivalence(t *testing.T) {
	r := testutil.RNG(11)
	const n, dv = 97, 64
	s := testutil.F64(testutil.Normal(r, n, 0, 3))
	v := make([][]float64, n)
	for i := range v {
		v[i] = testutil.F64(testutil.Normal(r, dv, 0, 1))
	}
	full, fullLSE := partial(s, v, 0, n)
	dst := make([]float32, dv)
	check := func(name string, lse float32) {
		t.Helper()
		if d := testutil.CalcDiff(testutil.F64(dst), testutil.F64(full)); d > 1e-12 {
			t.Errorf("%s: calc_diff %.3g", name, d)
		}
		// A few float32 ulps of the largest element: the merge multiplies
		// rounded outputs by rounded weights.
		var top float64
		for _, x := range full {
			top = max(top, math.Abs(float64(x)))
		}
		if md := testutil.MaxAbsDiff(testutil.F64(dst), testutil.F64(full)); md > 16*top*0x1p-24 {
			t.Errorf("%s: max |diff| %.3g > 16 ulp of %.3g", name, md, top)
		}
		if math.Abs(float64(lse-fullLSE)) > 1e-6*math.Abs(float64(fullLSE))+1e-6 {
			t.Errorf("%s: lse %v, want %v", name, lse, fullLSE)
		}
	}
	for k := 0; k <= n; k++ {
		o1, l1 := partial(s, v, 0, k)
		o2, l2 := partial(s, v, k, n)
		check("two-way", must(mla.Combine(dst, [][]float32{o1, o2}, []float32{l1, l2})))
	}
	o1, l1 := partial(s, v, 0, 30)
	o2, l2 := partial(s, v, 30, 31)
	o3, l3 := partial(s, v, 31, n)
	check("three-way", must(mla.Combine(dst, [][]float32{o1, o2, o3}, []float32{l1, l2, l3})))
}

func TestCombineEmpty(t *testing.T) {
	nan := float32(math.NaN())
	dst := []float32{7, 7}
	// All splits empty: +Inf and zeros, and the NaN in their buffers is not read.
	lse := must(mla.Combine(dst, [][]float32{{nan, nan}, {nan, nan}}, []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}))
	if !math.IsInf(float64(lse), 1) || dst[0] != 0 || dst[1] != 0 {
		t.Errorf("all empty: lse %v dst %v, want +Inf and zeros", lse, dst)
	}
	lse = must(mla.Combine(dst, nil, nil))
	if !math.IsInf(float64(lse), 1) || dst[0] != 0 {
		t.Errorf("no splits: lse %v dst %v", lse, dst)
	}
	// One empty split next to a real one: exactly the real one.
	lse = must(mla.Combine(dst, [][]float32{{nan, nan}, {0.25, -2}}, []float32{float32(math.Inf(-1)), 1.5}))
	if lse != 1.5 || dst[0] != 0.25 || dst[1] != -2 {
		t.Errorf("one empty: lse %v dst %v, want 1.5 [0.25 -2]", lse, dst)
	}
	// Decode marks a row that saw no key with lse = +Inf and out = 0; merging
	// such a result with a real one must not lose the real one.
	lse = must(mla.Combine(dst, [][]float32{{0, 0}, {0.25, -2}}, []float32{float32(math.Inf(1)), 1.5}))
	if lse != 1.5 || dst[0] != 0.25 || dst[1] != -2 {
		t.Errorf("Decode's empty marker +Inf next to a real split: lse %v dst %v, want 1.5 [0.25 -2]", lse, dst)
	}
	lse = must(mla.Combine(dst, [][]float32{{0, 0}, {nan, nan}}, []float32{float32(math.Inf(1)), float32(math.Inf(-1))}))
	if !math.IsInf(float64(lse), 1) || dst[0] != 0 || dst[1] != 0 {
		t.Errorf("+Inf and −Inf empties: lse %v dst %v, want +Inf and zeros", lse, dst)
	}
}

func TestCombineErrors(t *testing.T) {
	dst := []float32{1, 2, 3}
	if _, err := mla.Combine(dst, [][]float32{{1, 2, 3}}, nil); !errors.Is(err, mla.ErrShape) {
		t.Errorf("len mismatch: %v, want ErrShape", err)
	}
	if _, err := mla.Combine(dst, [][]float32{{1, 2}}, []float32{0}); !errors.Is(err, mla.ErrShape) {
		t.Errorf("short split: %v, want ErrShape", err)
	}
	if dst[0] != 1 {
		t.Errorf("dst changed on error: %v", dst)
	}
}

func must(lse float32, err error) float32 {
	if err != nil {
		panic(err)
	}
	return lse
}

func TestLSEBase(t *testing.T) {
	for _, v := range []float32{0, 1, -3.5, 12.25, float32(math.Inf(1)), float32(math.Inf(-1))} {
		b2 := mla.LSEToBase2(v)
		if want := float32(float64(v) / math.Ln2); b2 != want && !(math.IsInf(float64(v), 0) && b2 == v) {
			t.Errorf("LSEToBase2(%v) = %v, want %v", v, b2, want)
		}
		if back := mla.LSEFromBase2(b2); math.Abs(float64(back-v)) > 1e-6*math.Abs(float64(v)) && back != v {
			t.Errorf("round trip %v → %v → %v", v, b2, back)
		}
	}
	// ln Σ e^x for x = {0, 0} is ln 2; in base 2 it is 1.
	if got := mla.LSEToBase2(float32(math.Ln2)); math.Abs(float64(got)-1) > 1e-7 {
		t.Errorf("LSEToBase2(ln 2) = %v, want 1", got)
	}
	s := []float32{1, 2}
	mla.LSESliceToBase2(s)
	mla.LSESliceFromBase2(s)
	if math.Abs(float64(s[0]-1)) > 1e-6 || math.Abs(float64(s[1]-2)) > 1e-6 {
		t.Errorf("slice round trip %v", s)
	}
}
