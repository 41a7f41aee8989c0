package mla

import "math"

// Log2E and Ln2 convert between natural-log and base-2 log-sum-exp.
const (
	Log2E = math.Log2E
	Ln2   = math.Ln2
)

// LSEToBase2 converts a natural-log LSE (what FlashMLA and this package
// return) to base 2 (what FlashInfer returns by default): lse·log2(e).
// ±Inf and NaN pass through. Mixing the two bases silently is a real bug
// (sglang#33064); convert explicitly.
func LSEToBase2(lse float32) float32 { return float32(float64(lse) * Log2E) }

// LSEFromBase2 converts a base-2 LSE to natural log: lse2·ln(2).
func LSEFromBase2(lse2 float32) float32 { return float32(float64(lse2) * Ln2) }

// LSESliceToBase2 converts every element of lse in place (see LSEToBase2).
func LSESliceToBase2(lse []float32) {
	for i, v := range lse {
		lse[i] = LSEToBase2(v)
	}
}

// LSESliceFromBase2 converts every element of lse2 in place (see
// LSEFromBase2).
func LSESliceFromBase2(lse2 []float32) {
	for i, v := range lse2 {
		lse2[i] = LSEFromBase2(v)
	}
}

// Combine merges the partial attention results of one query row over
// disjoint key ranges, as FlashMLA's split-KV combine kernel does
// (flash_fwd_splitkv_mla_combine_kernel; csrc/smxx/decode/combine/
// combine.cu at HEAD). outs[i] is split i's output, already normalised
// within the split (len(dst) channels each); lses[i] is its natural-log LSE,
// −Inf for a split that saw no key (+Inf, Decode's marker for a row that saw
// no key, counts as empty too, so Decode results over disjoint key ranges
// merge directly). With m = max lses[i] (0 if that is
// −Inf) and s = Σ exp(lses[i] − m), the row's LSE is ln(s) + m (+Inf when
// s is 0 or NaN) and dst = Σ exp(lses[i] − lse)·outs[i]; an all-empty row
// gives +Inf and dst = 0. Arithmetic is float32 in split order, so the result
// is deterministic. Splits with weight 0 are not read (their NaN cannot
// leak). It returns an *ArgError wrapping ErrShape, and leaves dst
// untouched, if len(outs) != len(lses) or an outs[i] is shorter than dst.
func Combine(dst []float32, outs [][]float32, lses []float32) (float32, error) {
	if len(outs) != len(lses) {
		return 0, argErr("lses", ErrShape, "%d LSEs for %d partial outputs", len(lses), len(outs))
	}
	for i, o := range outs {
		if len(o) < len(dst) {
			return 0, argErr("outs", ErrShape, "outs[%d] has %d channels, dst %d", i, len(o), len(dst))
		}
	}
	return combine(dst, outs, lses), nil
}

// combine is Combine without the shape checks.
func combine(dst []float32, outs [][]float32, lses []float32) float32 {
	clear(dst)
	inf := float32(math.Inf(1))
	m := float32(math.Inf(-1))
	for _, l := range lses {
		if l > m && l != inf {
			m = l
		}
	}
	if math.IsInf(float64(m), -1) {
		m = 0
	}
	var s float32
	for _, l := range lses {
		if l != inf {
			s += exp32(l - m)
		}
	}
	if s == 0 || s != s {
		return float32(math.Inf(1))
	}
	lse := float32(math.Log(float64(s))) + m
	for i, l := range lses {
		if l == inf {
			continue
		}
		w := exp32(l - lse)
		if w == 0 {
			continue
		}
		o := outs[i][:len(dst)]
		for c, v := range o {
			dst[c] += w * v
		}
	}
	return lse
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }
