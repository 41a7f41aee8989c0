package mlatest

import (
	"context"
	"errors"
	"math"
	"regexp"
	"runtime"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Grid returns the decode grid of the issue, mirroring upstream's dense
// decoding test: b ∈ {1,2,6} × s_q ∈ {1,2,4} × s_k ∈ {0,1,20,63,64,65,140,1000}
// × h_q ∈ {1,3,9,63,64,128} × h_kv ∈ {1,2,3,8} (where h_q%h_kv = 0) ×
// causal × varlen. Page size (64, 1, 16, 100, 256) and cache dtype (BF16, F16,
// F32) rotate across cases rather than multiplying the grid. With short set
// it returns a fixed sample: every 97th case and the corner cases in
// Corners, with the batch and then the length cut until
// b·s_q·h_q·s_k ≤ 30,000, so that the float64 oracle stays cheap under -race.
func Grid(short bool) []oracle.Case {
	pages := []int{64, 1, 16, 100, 256}
	dtypes := []tensor.DType{tensor.BF16T, tensor.F16T, tensor.F32}
	var all []oracle.Case
	n := 0
	for _, b := range []int{1, 2, 6} {
		for _, sq := range []int{1, 2, 4} {
			for _, sk := range []int{0, 1, 20, 63, 64, 65, 140, 1000} {
				for _, hq := range []int{1, 3, 9, 63, 64, 128} {
					for _, hkv := range []int{1, 2, 3, 8} {
						if hq%hkv != 0 {
							continue
						}
						for _, causal := range []bool{false, true} {
							for _, varlen := range []bool{false, true} {
								all = append(all, oracle.Case{B: b, SQ: sq, SK: sk, HQ: hq, HKV: hkv, Causal: causal, Varlen: varlen,
									PageSize: pages[n%len(pages)], DType: dtypes[n%len(dtypes)], Seed: uint64(n)})
								n++
							}
						}
					}
				}
			}
		}
	}
	if !short {
		return append(all, Corners()...)
	}
	var s []oracle.Case
	for i := 0; i < len(all); i += 97 {
		c := all[i]
		if c.B*c.SQ*c.HQ*c.SK > 30_000 { // keep the float64 oracle cheap under -race
			c.B = 1
		}
		for c.SQ*c.HQ*c.SK > 30_000 && c.SK > 140 {
			c.SK /= 2
		}
		s = append(s, c)
	}
	for _, c := range Corners() {
		for c.B*c.SQ*c.HQ*c.SK > 30_000 && c.B > 1 {
			c.B--
		}
		for c.B*c.SQ*c.HQ*c.SK > 30_000 && c.SK > 140 {
			c.SK = c.SK * 2 / 3
		}
		s = append(s, c)
	}
	return s
}

// Corners returns the corner cases every run includes: half the batch at
// length 0 (upstream's have_zero_seqlen_k case, scaled down), lengths
// shorter than s_q under the causal mask, page sizes 1 and 64 with the
// DeepSeek-V3 decode shape, long sequences split over many parts, F32, F16
// and V3.2 FP8 (E4M3 storage kind) caches, peaked scores (std 1), and small
// non-DeepSeek head dims.
func Corners() []oracle.Case {
	return []oracle.Case{
		{B: 8, SQ: 2, SK: 130, HQ: 16, HKV: 1, Causal: true, ZeroHalf: true, Seed: 1},
		{B: 3, SQ: 4, SK: 2, HQ: 8, HKV: 2, Causal: true, Seed: 2},
		{B: 2, SQ: 1, SK: 300, HQ: 128, HKV: 1, PageSize: 1, Seed: 3},
		{B: 2, SQ: 2, SK: 333, HQ: 128, HKV: 1, Causal: true, PageSize: 64, Seed: 4},
		{B: 1, SQ: 1, SK: 2000, HQ: 16, HKV: 1, Varlen: true, PageSize: 32, NumParts: 132, Seed: 5},
		{B: 2, SQ: 2, SK: 200, HQ: 4, HKV: 2, DType: tensor.F32, Causal: true, Seed: 6},
		{B: 2, SQ: 1, SK: 200, HQ: 2, HKV: 1, DType: tensor.F16T, PageSize: 7, Seed: 7},
		{B: 2, SQ: 2, SK: 150, HQ: 32, HKV: 1, Std: 1, Seed: 8},
		{B: 2, SQ: 3, SK: 90, HQ: 6, HKV: 3, HeadDim: 40, HeadDimV: 24, PageSize: 5, Causal: true, Seed: 9},
		{B: 1, SQ: 1, SK: 70, HQ: 1, HKV: 1, HeadDim: 576, HeadDimV: 576, Seed: 10},
		{B: 2, SQ: 2, SK: 300, HQ: 16, HKV: 1, DType: tensor.E4M3T, Causal: true, Varlen: true, Seed: 11},
		{B: 2, SQ: 1, SK: 200, HQ: 1, HKV: 1, DType: tensor.E4M3T, PageSize: 61, Seed: 12},
	}
}

// Options tune Run.
type Options struct {
	// Skip lists regular expressions; a subtest whose full name matches one
	// is skipped (e.g. `_p(1|16|100|256)_` for a backend with page size 64
	// only, when its Supports does not already say so).
	Skip []string
	// Short selects the sampled grid. Run samples anyway unless the
	// exhaustive grid is asked for with FIREFLYER_LONG=1 in the environment
	// (and the test binary runs without -short).
	Short bool
	// Every, when > 1, runs only every Every-th grid case (for extra runs of
	// the same backend, e.g. with its kernels forced to another level).
	Every int
}

// skipper compiles o.Skip and returns the check each subtest runs first: it
// skips the subtest (t.Skipf) when its full name matches one of them.
func (o Options) skipper() func(t *testing.T) {
	var skips []*regexp.Regexp
	for _, s := range o.Skip {
		skips = append(skips, regexp.MustCompile(s))
	}
	return func(t *testing.T) {
		for _, re := range skips {
			if re.MatchString(t.Name()) {
				t.Skipf("skipped by pattern %q", re)
			}
		}
	}
}

// eachCase runs body on every case (every o.Every-th one when o.Every > 1)
// as a subtest named by the case, after skip.
func eachCase[C interface{ Name() string }](t *testing.T, o Options, skip func(*testing.T), cases []C, body func(*testing.T, C)) {
	for i, c := range cases {
		if o.Every > 1 && i%o.Every != 0 {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			skip(t)
			body(t, c)
		})
	}
}

// Run runs the conformance suite against be: the grid against the float64
// oracle with upstream's tolerances, then determinism (bits independent of
// GOMAXPROCS and of repeated runs for a fixed schedule of 5 parts; part
// counts 1, 3 and 132 agreeing with it within float32 rounding,
// calc_diff < 1e-10).
func Run(t *testing.T, be mla.Backend, o Options) {
	short := o.Short || testing.Short() || !testutil.Long()
	skip := o.skipper()
	t.Run("Grid", func(t *testing.T) {
		eachCase(t, o, skip, Grid(short), func(t *testing.T, c oracle.Case) {
			in := mustBuild(t, c)
			out, lse, ok := decode(t, be, in, nil)
			if !ok {
				return
			}
			refOut, refLSE, err := oracle.Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			if err := oracle.Check(out, lse, refOut, refLSE); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("Determinism", func(t *testing.T) {
		for _, c := range determinismCases(short) {
			t.Run(c.Name(), func(t *testing.T) {
				skip(t)
				in := mustBuild(t, c)
				// A fixed schedule: the default one follows GOMAXPROCS.
				fixed, err := mla.Plan(in.Seqlens, 5)
				if err != nil {
					t.Fatal(err)
				}
				prev := runtime.GOMAXPROCS(1)
				out1, lse1, ok := decode(t, be, in, fixed)
				runtime.GOMAXPROCS(2)
				out2, lse2, ok2 := decode(t, be, in, fixed)
				out3, lse3, ok3 := decode(t, be, in, fixed)
				runtime.GOMAXPROCS(prev)
				if !ok || !ok2 || !ok3 {
					return
				}
				if !sameBits(out1, out2) || !sameBits(lse1, lse2) {
					t.Fatal("bits differ between GOMAXPROCS 1 and 2 for one schedule")
				}
				if !sameBits(out2, out3) || !sameBits(lse2, lse3) {
					t.Fatal("bits differ between two runs")
				}
				refOut, refLSE, err := oracle.Decode(in)
				if err != nil {
					t.Fatal(err)
				}
				for _, parts := range []int{1, 3, 132} {
					s, err := mla.Plan(in.Seqlens, parts)
					if err != nil {
						t.Fatal(err)
					}
					out, lse, ok := decode(t, be, in, s)
					if !ok {
						return
					}
					if d := testutil.CalcDiff(testutil.F64(out), testutil.F64(out1)); d >= 1e-10 {
						t.Errorf("parts %d: out calc_diff %.3g vs 5 parts, want < 1e-10", parts, d)
					}
					if d := calcDiffFinite(lse, lse1); d >= 1e-10 {
						t.Errorf("parts %d: lse calc_diff %.3g vs 5 parts, want < 1e-10", parts, d)
					}
					if err := oracle.Check(out, lse, refOut, refLSE); err != nil {
						t.Errorf("parts %d: %v", parts, err)
					}
				}
			})
		}
	})
}

func determinismCases(short bool) []oracle.Case {
	sk := 700
	if short {
		sk = 150
	}
	cs := []oracle.Case{
		{B: 3, SQ: 2, SK: sk, HQ: 16, HKV: 1, Causal: true, Varlen: true, Seed: 11},
		{B: 2, SQ: 1, SK: 400, HQ: 1, HKV: 1, Varlen: true, PageSize: 16, Seed: 12},
		{B: 4, SQ: 1, SK: 300, HQ: 6, HKV: 2, ZeroHalf: true, DType: tensor.F32, Seed: 13},
	}
	if !short {
		cs = append(cs, oracle.Case{B: 4, SQ: 2, SK: 1500, HQ: 128, HKV: 1, Causal: true, Varlen: true, Seed: 14})
	}
	return cs
}

func mustBuild(t *testing.T, c oracle.Case) *oracle.Input {
	t.Helper()
	in, err := c.Build()
	if err != nil {
		t.Fatalf("build %s: %v", c.Name(), err)
	}
	return in
}

// decode runs the backend; it skips the test when the backend declares the
// problem unsupported and reports false.
func decode(t *testing.T, be mla.Backend, in *oracle.Input, s *mla.Schedule) (out, lse []float32, ok bool) {
	t.Helper()
	opts := in.Opts
	opts.Schedule = s
	out, lse, err := mla.Decode(context.Background(), be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &opts)
	if errors.Is(err, mla.ErrUnsupported) {
		t.Skipf("%s: %v", be.Name(), err)
		return nil, nil, false
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out, lse, true
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// calcDiffFinite is CalcDiff over the positions where both are finite (an
// lse of +Inf must match exactly, which Check verifies).
func calcDiffFinite(a, b []float32) float64 {
	var x, y []float64
	for i := range a {
		if math.IsInf(float64(a[i]), 0) || math.IsInf(float64(b[i]), 0) {
			if a[i] != b[i] {
				return math.Inf(1)
			}
			continue
		}
		x, y = append(x, float64(a[i])), append(y, float64(b[i]))
	}
	return testutil.CalcDiff(x, y)
}
