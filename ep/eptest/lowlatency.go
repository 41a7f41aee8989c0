package eptest

import (
	"context"
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// LowLatencySpec describes one low-latency case.
type LowLatencySpec struct {
	Ranks, MaxTokens, Hidden, TopK, Experts int
	FP8, RoundScale, UE8M0                  bool
	Hook, ZeroCopy                          bool
	ZeroRank                                int
	Seed                                    uint64
}

type llInput struct {
	n    int
	x    []tensor.BF16
	topk ep.TopK
}

// input follows test_low_latency.py: x = rank − 128 on every channel but the
// last 128, which hold the token index; k distinct experts per token, then
// about ten entries set to −1; weights |N(0,1)|.
func (s *LowLatencySpec) input(rank int) *llInput {
	rng := testutil.RNG(s.Seed*1000 + uint64(rank) + 7)
	in := &llInput{n: s.MaxTokens - rank%3}
	if rank == s.ZeroRank {
		in.n = 0
	}
	n, h := in.n, s.Hidden
	in.x = make([]tensor.BF16, n*h)
	for t := 0; t < n; t++ {
		for c := 0; c < h; c++ {
			v := float32(rank - 128)
			if c >= h-128 {
				v = float32(t)
			}
			in.x[t*h+c] = tensor.BF16FromFloat32(v)
		}
	}
	in.topk = ep.TopK{K: s.TopK, Idx: randomTopK(rng, n, s.TopK, s.Experts, false), Weights: make([]float32, n*s.TopK)}
	for i := 0; i < min(10, n*s.TopK); i++ {
		in.topk.Idx[rng.IntN(n*s.TopK)] = -1
	}
	for i := range in.topk.Weights {
		in.topk.Weights[i] = float32(math.Abs(rng.NormFloat64()))
	}
	return in
}

func lowLatencyCases() []Case {
	var cs []Case
	add := func(name string, short bool, s LowLatencySpec) {
		cs = append(cs, Case{Name: "low-latency/" + name, Ranks: s.Ranks, Short: short, Rank: s.RunRank})
	}
	for _, r := range []int{1, 2, 3, 4, 8} {
		add(fmt.Sprintf("R%d/bf16", r), true, LowLatencySpec{Ranks: r, MaxTokens: 16, Hidden: 256, TopK: 4, Experts: 4 * r, ZeroRank: -1, Seed: 1})
		add(fmt.Sprintf("R%d/fp8-hook-zero-rank", r), true, LowLatencySpec{Ranks: r, MaxTokens: 16, Hidden: 384, TopK: 5, Experts: 3 * r, FP8: true, Hook: true, ZeroRank: r - 1, Seed: 2})
	}
	add("R4/fp8-round-scale", true, LowLatencySpec{Ranks: 4, MaxTokens: 12, Hidden: 256, TopK: 4, Experts: 8, FP8: true, RoundScale: true, ZeroRank: -1, Seed: 3})
	add("R4/fp8-ue8m0-zero-copy", true, LowLatencySpec{Ranks: 4, MaxTokens: 12, Hidden: 512, TopK: 9, Experts: 16, FP8: true, RoundScale: true, UE8M0: true, ZeroCopy: true, ZeroRank: 1, Seed: 4})
	add("R8/bf16-hook-zero-copy-topk9", true, LowLatencySpec{Ranks: 8, MaxTokens: 8, Hidden: 128, TopK: 9, Experts: 16, Hook: true, ZeroCopy: true, ZeroRank: 3, Seed: 5})
	add("R8/fp8-large", false, LowLatencySpec{Ranks: 8, MaxTokens: 128, Hidden: 1024, TopK: 8, Experts: 32, FP8: true, ZeroRank: -1, Seed: 6})
	return cs
}

// Options returns Buffer options for the spec.
func (s *LowLatencySpec) Options() ep.Options {
	return ep.Options{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: s.MaxTokens, Hidden: s.Hidden, NumExperts: s.Experts, MaxTopK: s.TopK}}
}

// RunRank dispatches twice (both outstanding when Hook is set, received in
// reverse order, exercising the double buffer), checks both results, and
// combines each through an identity "expert".
func (s *LowLatencySpec) RunRank(ctx context.Context, t ep.Transport) error {
	b, err := ep.New(ctx, t, s.Options())
	if err != nil {
		return err
	}
	defer b.Close()
	me, r := t.Rank(), s.Ranks
	ins := make([]*llInput, r)
	for i := range ins {
		ins[i] = s.input(i)
	}
	in := ins[me]
	x := ep.Tokens{N: in.n, Hidden: s.Hidden, BF16: in.x}
	el := s.Experts / r
	stats := make([]int32, el)
	opts := ep.LowLatencyOptions{UseFP8: s.FP8, RoundScale: s.RoundScale, UseUE8M0: s.UE8M0, ReturnRecvHook: s.Hook, CumulativeLocalExpertRecvStats: stats}
	res1, err := b.LowLatencyDispatch(ctx, x, in.topk, opts)
	if err != nil {
		return err
	}
	var res2 *ep.LowLatencyResult
	if s.Hook {
		opts.CumulativeLocalExpertRecvStats = nil
		if res2, err = b.LowLatencyDispatch(ctx, x, in.topk, opts); err != nil {
			return err
		}
		if err := res2.Hook(ctx); err != nil {
			return err
		}
		if err := res1.Hook(ctx); err != nil {
			return err
		}
	} else {
		res1 = res1.Clone()
		if res2, err = b.LowLatencyDispatch(ctx, x, in.topk, opts); err != nil {
			return err
		}
	}
	for i, res := range []*ep.LowLatencyResult{res1, res2} {
		if err := s.checkDispatch(res, ins, me, i == 0 || !s.Hook, stats); err != nil {
			return fmt.Errorf("dispatch %d: %w", i+1, err)
		}
	}
	// Combine through the identity expert: y = dequantized received rows.
	for i, res := range []*ep.LowLatencyResult{res1, res2} {
		y := make([]tensor.BF16, len(b.NextCombineBuffer()))
		if s.ZeroCopy {
			y = b.NextCombineBuffer()
		}
		tmp := make([]float32, s.Hidden)
		rm := r * s.MaxTokens
		for e := 0; e < el; e++ {
			for j := 0; j < int(res.Count[e]); j++ {
				row := e*rm + j
				dequant(res.X, row, tmp)
				for c, v := range tmp {
					y[row*s.Hidden+c] = tensor.BF16FromFloat32Torch(v)
				}
			}
		}
		copts := ep.LowLatencyCombineOptions{ZeroCopy: s.ZeroCopy, ReturnRecvHook: s.Hook}
		xin := y
		if s.ZeroCopy {
			xin = nil
		}
		cr, err := b.LowLatencyCombine(ctx, xin, in.topk, res.Handle, copts)
		if err != nil {
			return err
		}
		if cr.Hook != nil {
			if err := cr.Hook(ctx); err != nil {
				return err
			}
		}
		if err := s.checkCombine(cr.X, in, me); err != nil {
			return fmt.Errorf("combine %d: %w", i+1, err)
		}
	}
	return nil
}

func (s *LowLatencySpec) checkDispatch(res *ep.LowLatencyResult, ins []*llInput, me int, withStats bool, stats []int32) error {
	r, h, k, m := s.Ranks, s.Hidden, s.TopK, s.MaxTokens
	el := s.Experts / r
	rm := r * m
	if res.X.N != el*rm || res.X.Hidden != h {
		return failf("rank %d: X is %d×%d, want %d×%d", me, res.X.N, res.X.Hidden, el*rm, h)
	}
	if s.FP8 != (res.X.FP8 != nil) || s.UE8M0 != (res.X.ScalesUE8M0 != nil) {
		return failf("rank %d: result encoding does not match the options", me)
	}
	row := make([]float32, h)
	var gotTail, wantTail []float64
	for e := 0; e < el; e++ {
		ge := int32(me*el + e)
		total := 0
		for src := 0; src < r; src++ {
			rg := res.LayoutRange[e*r+src]
			beg, cnt := int(rg>>32), int(rg&0xFFFFFFFF)
			if beg != total {
				return failf("rank %d expert %d: block of rank %d begins at %d, want %d", me, e, src, beg, total)
			}
			// The block holds, in order, the (token, slot) pairs of src that
			// chose this expert.
			j := beg
			o := ins[src]
			for t := 0; t < o.n; t++ {
				for kk := 0; kk < k; kk++ {
					if o.topk.Idx[t*k+kk] != ge {
						continue
					}
					if j >= beg+cnt {
						return failf("rank %d expert %d: block of rank %d too short (%d)", me, e, src, cnt)
					}
					if got := res.SrcInfo[e*rm+j]; int(got) != t {
						return failf("rank %d expert %d row %d: src_info %d, want %d", me, e, j, got, t)
					}
					dequant(res.X, e*rm+j, row)
					want := float64(src - 128)
					for c := 0; c < h-128; c++ {
						if s.RoundScale {
							if math.Abs(float64(row[c])-want) > math.Abs(want)/16+1e-6 {
								return failf("rank %d expert %d row %d ch %d: %v, want %v ± 1/16", me, e, j, c, row[c], want)
							}
						} else if tol := math.Abs(want) * fp8Tol(s.FP8); math.Abs(float64(row[c])-want) > tol {
							// FP8 without rounding: q = ±448 exactly, and only
							// scale = amax/448 in float32 rounds.
							return failf("rank %d expert %d row %d ch %d: %v, want %v", me, e, j, c, row[c], want)
						}
						if row[c] != row[0] {
							return failf("rank %d expert %d row %d: not constant over [:-128]", me, e, j)
						}
					}
					for c := h - 128; c < h; c++ {
						gotTail = append(gotTail, float64(row[c]))
						wantTail = append(wantTail, float64(t))
					}
					j++
				}
			}
			if j != beg+cnt {
				return failf("rank %d expert %d: block of rank %d has %d rows, want %d", me, e, src, cnt, j-beg)
			}
			total += cnt
		}
		if int(res.Count[e]) != total {
			return failf("rank %d expert %d: count %d, want %d", me, e, res.Count[e], total)
		}
		if withStats && stats[e] != 2*res.Count[e] && stats[e] != res.Count[e] {
			return failf("rank %d expert %d: stats %d, count %d", me, e, stats[e], res.Count[e])
		}
	}
	thr := 1e-9
	if s.RoundScale {
		thr = 0.007
	}
	if d := calcDiff(gotTail, wantTail); d > thr {
		return failf("rank %d: calc_diff(tail channels, src_info) = %.3g > %g", me, d, thr)
	}
	return nil
}

func (s *LowLatencySpec) checkCombine(out []tensor.BF16, in *llInput, me int) error {
	h, k := s.Hidden, s.TopK
	if len(out) != in.n*h {
		return failf("rank %d: combined has %d values, want %d", me, len(out), in.n*h)
	}
	var got, ref []float64
	xr := make([]float32, h)
	for t := 0; t < in.n; t++ {
		tensor.DecodeBF16(xr, in.x[t*h:(t+1)*h])
		var wsum float64
		for kk := 0; kk < k; kk++ {
			if in.topk.Idx[t*k+kk] >= 0 {
				wsum += float64(in.topk.Weights[t*k+kk])
			}
		}
		for c := 0; c < h; c++ {
			v := out[t*h+c]
			if v.IsNaN() {
				return failf("rank %d token %d channel %d: NaN", me, t, c)
			}
			if !s.FP8 {
				// Exact oracle: Σ_k fl32(w·x) in top-k order, then BF16.
				var acc float32
				for kk := 0; kk < k; kk++ {
					if in.topk.Idx[t*k+kk] >= 0 {
						acc += float32(in.topk.Weights[t*k+kk] * xr[c])
					}
				}
				if want := tensor.BF16FromFloat32Torch(acc); v != want {
					return failf("rank %d token %d channel %d: combined %v, want %v", me, t, c, v.Float32(), want.Float32())
				}
			}
			got = append(got, float64(v.Float32()))
			ref = append(ref, float64(xr[c])*wsum)
		}
	}
	thr := 1e-5
	if s.FP8 {
		thr = 9e-4
	}
	if d := calcDiff(got, ref); d > thr {
		return failf("rank %d: calc_diff(combined, x·Σw) = %.3g > %g", me, d, thr)
	}
	return nil
}

func fp8Tol(fp8 bool) float64 {
	if fp8 {
		return 1.0 / (1 << 20)
	}
	return 0
}
