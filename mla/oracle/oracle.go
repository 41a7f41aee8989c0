package oracle

import (
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

// Decode computes the input's decode in float64 the way upstream's
// reference_torch does (dims, scale and mask from the validated arguments,
// not from in.Case): gather request i's first L_i cache rows through the block table,
// compute S = scale·q·Kᵀ, apply the bottom-right causal mask, take a full
// (two-pass) softmax and multiply by V = K[:, :HeadDimV]. Rows that see no
// key get out = 0 and lse = +Inf. It returns out [B, SQ, HQ, HeadDimV] and
// lse [B, HQ, SQ] (natural log), or the error mla.NewProblem gives for an
// invalid input.
func Decode(in *Input) (out, lse []float64, err error) {
	p, err := mla.NewProblem(in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts)
	if err != nil {
		return nil, nil, err
	}
	c := Case{B: p.B, SQ: p.SQ, HQ: p.HQ, HKV: p.HKV(), PageSize: p.Cache.PageSize, HeadDim: p.Cache.HeadDim,
		HeadDimV: p.HeadDimV, Scale: p.Scale, Causal: p.Causal}
	d, dv := c.HeadDim, c.HeadDimV
	hpk := c.HQ / c.HKV
	out = make([]float64, c.B*c.SQ*c.HQ*dv)
	lse = make([]float64, c.B*c.HQ*c.SQ)
	row := make([]float32, d)
	for i, l32 := range in.Seqlens {
		l := int(l32)
		k := make([][]float64, c.HKV*l) // [h][t][d]
		for h := range c.HKV {
			for t := range l {
				r, err := in.Cache.Row(int(in.BlockTable[i][t/c.PageSize]), t%c.PageSize, h, row)
				if err != nil {
					return nil, nil, err
				}
				k[h*l+t] = testutil.F64(r)
			}
		}
		s := make([]float64, l)
		for j := range c.SQ {
			vis := l
			if c.Causal {
				vis = max(0, min(l, l-c.SQ+j+1))
			}
			for hq := range c.HQ {
				h := hq / hpk
				q := in.Q.Data[((i*c.SQ+j)*c.HQ+hq)*d:][:d]
				o := out[((i*c.SQ+j)*c.HQ+hq)*dv:][:dv]
				if vis == 0 {
					lse[(i*c.HQ+hq)*c.SQ+j] = math.Inf(1)
					continue
				}
				mx := math.Inf(-1)
				for t := range vis {
					var dot float64
					kt := k[h*l+t]
					for e, qv := range q {
						dot += float64(qv) * kt[e]
					}
					s[t] = float64(c.Scale) * dot
					mx = max(mx, s[t])
				}
				var sum float64
				for t := range vis {
					s[t] = math.Exp(s[t] - mx)
					sum += s[t]
				}
				for t := range vis {
					w, kt := s[t]/sum, k[h*l+t]
					for e := range o {
						o[e] += w * kt[e]
					}
				}
				lse[(i*c.HQ+hq)*c.SQ+j] = mx + math.Log(sum)
			}
		}
	}
	return out, lse, nil
}

// Tolerances are upstream's (kernelkit.check_is_allclose in
// tests/test_flash_mla_dense_decoding.py) for BF16 output.
const (
	OutAbs      = 8e-4
	OutRel      = 2.01 / 128
	OutCalcDiff = 5e-6
	LSEAbs      = 1e-6
	LSERel      = 8.01 / 65536
)

// Check compares a backend's out and lse with the oracle's: every out
// element within OutAbs + OutRel·|ref|, the whole out's calc_diff ≤
// OutCalcDiff, every lse element within LSEAbs + LSERel·|ref|, and Inf and
// NaN in the same positions with the same sign. It returns nil or an error
// describing the first mismatch.
func Check(out, lse []float32, refOut, refLSE []float64) error {
	if len(out) != len(refOut) || len(lse) != len(refLSE) {
		return fmt.Errorf("lengths out %d lse %d, want %d and %d", len(out), len(lse), len(refOut), len(refLSE))
	}
	if err := closeAll("out", out, refOut, OutAbs, OutRel); err != nil {
		return err
	}
	if d := testutil.CalcDiff(testutil.F64(out), refOut); d > OutCalcDiff || d != d {
		return fmt.Errorf("out: calc_diff %.3g > %g", d, OutCalcDiff)
	}
	return closeAll("lse", lse, refLSE, LSEAbs, LSERel)
}

// closeAll compares got with want elementwise: each finite element within
// abs + rel·|want|; ±Inf and NaN must match exactly.
func closeAll(name string, got []float32, want []float64, abs, rel float64) error {
	return eachClose(name, got, want,
		func(d, w float64) bool { return d <= abs+rel*math.Abs(w) },
		func(d, w float64) string { return fmt.Sprintf("|diff| %.3g > %.3g", d, abs+rel*math.Abs(w)) })
}

// eachClose walks got and want together: ±Inf and NaN in want must stand in
// got at the same position with the same sign, and neither may appear in got
// elsewhere; every finite pair must pass within(|got−want|, want), and
// why(|got−want|, want) says what a failing one missed. It returns nil or an
// error naming the first position that fails. got is at least as long as
// want.
func eachClose(name string, got []float32, want []float64, within func(d, w float64) bool, why func(d, w float64) string) error {
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(w) || math.IsInf(w, 0) || math.IsNaN(g) || math.IsInf(g, 0) {
			if math.IsNaN(w) && math.IsNaN(g) || w == g {
				continue
			}
			return fmt.Errorf("%s[%d] = %v, want %v", name, i, g, w)
		}
		if d := math.Abs(g - w); !within(d, w) {
			return fmt.Errorf("%s[%d] = %.9g, want %.9g (%s)", name, i, g, w, why(d, w))
		}
	}
	return nil
}
