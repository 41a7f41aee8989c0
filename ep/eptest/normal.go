package eptest

import (
	"context"
	"fmt"
	"slices"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// NormalSpec describes one normal-mode case (Dispatch, DispatchCached,
// Combine).
type NormalSpec struct {
	Ranks, Tokens, Hidden, TopK, Experts int
	// Enc is 0 (BF16), 1 (FP8 with float32 scales) or 2 (FP8 with UE8M0).
	Enc int
	// Rand uses N(0,1) payloads; otherwise token rows are the constant rank
	// (upstream's x = ones·rank).
	Rand bool
	// ZeroRank, if ≥ 0, gives that rank zero tokens.
	ZeroRank int
	// MinusOne adds all −1 rows and scattered −1 entries.
	MinusOne bool
	// NoTopK dispatches with a Layout only (no expert ids or weights).
	NoTopK    bool
	Align     int
	Worst     bool // NumWorstTokens = N·R
	Bias      int  // number of bias tensors, 0..2
	Async     bool // use DispatchAsync and CombineAsync
	Seed      uint64
	MaxExpert int
}

type normalInput struct {
	n      int
	x      []tensor.BF16
	tokens ep.Tokens
	topk   ep.TopK
	layout *ep.Layout
	bias   [2][]tensor.BF16
}

func (s *NormalSpec) input(rank int) *normalInput {
	rng := testutil.RNG(s.Seed*1000 + uint64(rank) + 1)
	in := &normalInput{n: s.Tokens}
	if rank == s.ZeroRank {
		in.n = 0
	}
	n, h := in.n, s.Hidden
	if s.Rand {
		in.x = bf16Slice(testutil.Normal(rng, n*h, 0, 1))
	} else {
		in.x = make([]tensor.BF16, n*h)
		for i := range in.x {
			in.x[i] = tensor.BF16FromFloat32(float32(rank))
		}
	}
	in.tokens = ep.Tokens{N: n, Hidden: h}
	switch s.Enc {
	case encBF16:
		in.tokens.BF16 = in.x
	case encFP8:
		in.tokens = fp8Tokens(in.x, n, h, false)
	case encUE8M0:
		in.tokens = fp8Tokens(in.x, n, h, true)
	}
	in.topk = ep.TopK{K: s.TopK, Idx: randomTopK(rng, n, s.TopK, s.Experts, s.MinusOne), Weights: testutil.Normal(rng, n*s.TopK, 0, 1)}
	var err error
	in.layout, err = ep.ComputeLayout(in.topk, n, s.Ranks, s.Experts)
	if err != nil {
		panic(err) // generated input is valid
	}
	for i := 0; i < s.Bias; i++ {
		in.bias[i] = bf16Slice(testutil.Normal(rng, n*h, 0, 1))
	}
	return in
}

func normalCases() []Case {
	var cs []Case
	add := func(name string, short bool, s NormalSpec) {
		cs = append(cs, Case{Name: "normal/" + name, Ranks: s.Ranks, Short: short, Rank: s.RunRank})
	}
	for _, r := range []int{1, 2, 3, 4, 8} {
		add(fmt.Sprintf("R%d/bf16-const", r), true, NormalSpec{Ranks: r, Tokens: 24, Hidden: 256, TopK: 4, Experts: 8 * r, ZeroRank: -1, Seed: 1})
		add(fmt.Sprintf("R%d/bf16-rand-minus1-zero-rank", r), true, NormalSpec{Ranks: r, Tokens: 20, Hidden: 200, TopK: 3, Experts: 4 * r, Rand: true, ZeroRank: r - 1, MinusOne: true, Align: 4, Seed: 2})
		add(fmt.Sprintf("R%d/fp8-rand", r), r != 8, NormalSpec{Ranks: r, Tokens: 16, Hidden: 256, TopK: 4, Experts: 4 * r, Enc: encFP8, Rand: true, ZeroRank: -1, Seed: 3})
	}
	add("R4/ue8m0-rand-minus1", true, NormalSpec{Ranks: 4, Tokens: 16, Hidden: 384, TopK: 2, Experts: 8, Enc: encUE8M0, Rand: true, ZeroRank: -1, MinusOne: true, Seed: 4})
	add("R4/hidden-100-topk9-bias2", true, NormalSpec{Ranks: 4, Tokens: 18, Hidden: 100, TopK: 9, Experts: 16, Rand: true, ZeroRank: 2, MinusOne: true, Bias: 2, Seed: 5})
	add("R3/fp8-hidden-200-bias1", true, NormalSpec{Ranks: 3, Tokens: 12, Hidden: 200, TopK: 5, Experts: 9, Enc: encFP8, Rand: true, ZeroRank: -1, Bias: 1, Seed: 6})
	add("R4/no-topk", true, NormalSpec{Ranks: 4, Tokens: 10, Hidden: 64, TopK: 2, Experts: 8, ZeroRank: -1, NoTopK: true, Seed: 7})
	add("R4/worst-tokens-align8", true, NormalSpec{Ranks: 4, Tokens: 10, Hidden: 128, TopK: 3, Experts: 8, Rand: true, ZeroRank: 0, MinusOne: true, Worst: true, Align: 8, Seed: 8})
	add("R8/async-minus1-topk9", true, NormalSpec{Ranks: 8, Tokens: 16, Hidden: 128, TopK: 9, Experts: 16, Rand: true, ZeroRank: 5, MinusOne: true, Async: true, Seed: 9})
	add("R8/all-minus1", true, NormalSpec{Ranks: 8, Tokens: 7, Hidden: 64, TopK: 1, Experts: 8, Rand: true, ZeroRank: -1, MinusOne: true, Seed: 10})
	add("R8/large", false, NormalSpec{Ranks: 8, Tokens: 256, Hidden: 1024, TopK: 8, Experts: 64, Rand: true, ZeroRank: -1, MinusOne: true, Bias: 1, Seed: 11})
	return cs
}

// Options returns Buffer options large enough for the spec.
func (s *NormalSpec) Options() ep.Options {
	return ep.Options{NormalBytes: ep.NormalSizeHint(s.Ranks*s.Tokens, s.Hidden, s.TopK), MaxExperts: max(s.Experts, 64)}
}

// RunRank runs the spec on one rank: Dispatch, checks, DispatchCached,
// Combine, checks.
func (s *NormalSpec) RunRank(ctx context.Context, t ep.Transport) error {
	b, err := ep.New(ctx, t, s.Options())
	if err != nil {
		return err
	}
	defer b.Close()
	me, r, h, k := t.Rank(), s.Ranks, s.Hidden, s.TopK
	el := s.Experts / r
	ins := make([]*normalInput, r)
	for i := range ins {
		ins[i] = s.input(i)
	}
	in := ins[me]
	opts := ep.DispatchOptions{NumExperts: s.Experts, ExpertAlignment: s.Align, Layout: in.layout}
	if s.Worst {
		opts.NumWorstTokens = s.Tokens * r
	}
	var topk *ep.TopK
	if !s.NoTopK {
		topk = &in.topk
	}
	var res *ep.DispatchResult
	if s.Async {
		res, err = b.DispatchAsync(ctx, in.tokens, topk, opts).Wait(ctx)
	} else {
		res, err = b.Dispatch(ctx, in.tokens, topk, opts)
	}
	if err != nil {
		return err
	}
	hd := res.Handle

	// (1) received count, (3) rows by source block in source order.
	want := 0
	for _, o := range ins {
		want += int(o.layout.PerRank[me])
	}
	if hd.NumRecv != want {
		return failf("rank %d received %d tokens, want %d", me, hd.NumRecv, want)
	}
	rows := hd.NumRecv
	if s.Worst {
		rows = s.Tokens * r
	}
	if res.X.N != rows {
		return failf("rank %d: result has %d rows, want %d", me, res.X.N, rows)
	}
	wantPer := make([]int, el)
	perNoAlign := make([]int, el)
	row := 0
	for src, o := range ins {
		b0, e0 := hd.RecvRange(src)
		if b0 != row {
			return failf("rank %d: block of source %d starts at %d, want %d", me, src, b0, row)
		}
		for j := 0; j < el; j++ {
			perNoAlign[j] += int(o.layout.PerExpert[me*el+j])
		}
		for tok := 0; tok < o.n; tok++ {
			if !o.layout.InRank[tok*r+me] {
				continue
			}
			if row >= e0 {
				return failf("rank %d: block of source %d ends at %d, too early", me, src, e0)
			}
			if err := checkRow(res, hd, row, src, tok, o, s, me, el); err != nil {
				return err
			}
			row++
		}
		if row != e0 {
			return failf("rank %d: block of source %d ends at %d, want %d", me, src, e0, row)
		}
	}
	// (2) aligned per-expert counts; (4) local-id histogram.
	a := max(s.Align, 1)
	for j := range wantPer {
		wantPer[j] = (perNoAlign[j] + a - 1) / a * a
	}
	if s.Worst {
		if len(res.PerExpert) != 0 {
			return failf("rank %d: PerExpert = %v with NumWorstTokens, want empty", me, res.PerExpert)
		}
	} else if !slices.Equal(res.PerExpert, wantPer) {
		return failf("rank %d: PerExpert = %v, want %v", me, res.PerExpert, wantPer)
	}
	if res.TopKIdx != nil {
		hist := make([]int, el)
		for i, e := range res.TopKIdx {
			if e < -1 || int(e) >= el {
				return failf("rank %d: TopKIdx[%d] = %d outside [-1, %d)", me, i, e, el)
			}
			if e >= 0 {
				hist[e]++
			}
			if i >= hd.NumRecv*k && e != -1 {
				return failf("rank %d: padding row %d has TopKIdx %d, want -1", me, i/k, e)
			}
		}
		if !slices.Equal(hist, perNoAlign) {
			return failf("rank %d: local expert histogram %v, want %v", me, hist, perNoAlign)
		}
	}

	// (7) cached dispatch repeats the data.
	first := res.Clone()
	cres, err := b.DispatchCached(ctx, in.tokens, hd)
	if err != nil {
		return err
	}
	if cres.X.N != hd.NumRecv && !s.Worst {
		return failf("rank %d: cached dispatch has %d rows, want %d", me, cres.X.N, hd.NumRecv)
	}
	for i := 0; i < hd.NumRecv*h; i++ {
		if (first.X.BF16 != nil && first.X.BF16[i] != cres.X.BF16[i]) || (first.X.FP8 != nil && first.X.FP8[i] != cres.X.FP8[i]) {
			return failf("rank %d: cached dispatch differs at element %d", me, i)
		}
	}

	// (8) combine of the (dequantized) received rows: x·ranks-per-token.
	y := make([]tensor.BF16, rows*h)
	tmp := make([]float32, h)
	for i := 0; i < hd.NumRecv; i++ {
		dequant(first.X, i, tmp)
		for c := range tmp {
			y[i*h+c] = tensor.BF16FromFloat32Torch(tmp[c])
		}
	}
	copts := ep.CombineOptions{Bias: in.bias}
	if first.Weights != nil {
		copts.Weights, copts.TopK = first.Weights, k
	}
	var cb *ep.CombineResult
	if s.Async {
		cb, err = b.CombineAsync(ctx, y, hd, copts).Wait(ctx)
	} else {
		cb, err = b.Combine(ctx, y, hd, copts)
	}
	if err != nil {
		return err
	}
	return checkCombine(cb, in, s, me)
}

func checkRow(res *ep.DispatchResult, hd *ep.Handle, row, src, tok int, o *normalInput, s *NormalSpec, me, el int) error {
	h, k := s.Hidden, s.TopK
	if got := hd.RecvSrcIdx[row]; int(got) != tok {
		return failf("rank %d row %d: RecvSrcIdx = %d, want token %d of rank %d", me, row, got, tok, src)
	}
	switch s.Enc {
	case encBF16:
		if !slices.Equal(res.X.BF16[row*h:(row+1)*h], o.x[tok*h:(tok+1)*h]) {
			return failf("rank %d row %d: payload differs from token %d of rank %d", me, row, tok, src)
		}
		if !s.Rand && res.X.BF16[row*h].Float32() != float32(src) {
			return failf("rank %d row %d: value %v, want the source rank %d", me, row, res.X.BF16[row*h].Float32(), src)
		}
	default:
		ns := ep.NumScales(h)
		if !slices.Equal(res.X.FP8[row*h:(row+1)*h], o.tokens.FP8[tok*h:(tok+1)*h]) {
			return failf("rank %d row %d: FP8 payload differs from token %d of rank %d", me, row, tok, src)
		}
		if s.Enc == encFP8 && !slices.Equal(res.X.Scales[row*ns:(row+1)*ns], o.tokens.Scales[tok*ns:(tok+1)*ns]) ||
			s.Enc == encUE8M0 && !slices.Equal(res.X.ScalesUE8M0[row*ns:(row+1)*ns], o.tokens.ScalesUE8M0[tok*ns:(tok+1)*ns]) {
			return failf("rank %d row %d: scales differ from token %d of rank %d", me, row, tok, src)
		}
	}
	if res.TopKIdx == nil {
		if !s.NoTopK {
			return failf("rank %d: TopKIdx is nil", me)
		}
		return nil
	}
	for j := 0; j < k; j++ {
		e := o.topk.Idx[tok*k+j]
		wantIdx, wantW := int32(-1), float32(0)
		if e >= 0 && int(e)/el == me {
			wantIdx, wantW = e-int32(me*el), o.topk.Weights[tok*k+j]
		}
		if res.TopKIdx[row*k+j] != wantIdx {
			return failf("rank %d row %d slot %d: local id %d, want %d", me, row, j, res.TopKIdx[row*k+j], wantIdx)
		}
		if res.Weights[row*k+j] != wantW {
			return failf("rank %d row %d slot %d: weight %v, want %v", me, row, j, res.Weights[row*k+j], wantW)
		}
	}
	return nil
}

func checkCombine(cb *ep.CombineResult, in *normalInput, s *NormalSpec, me int) error {
	n, h, k, r := in.n, s.Hidden, s.TopK, s.Ranks
	if len(cb.X) != n*h {
		return failf("rank %d: combined has %d values, want %d", me, len(cb.X), n*h)
	}
	var got, ref []float64
	src := make([]float32, h)
	for t := 0; t < n; t++ {
		rpt := 0
		for d := 0; d < r; d++ {
			if in.layout.InRank[t*r+d] {
				rpt++
			}
		}
		// The value every rank sends back is the dequantized row in BF16.
		dequant(in.tokens, t, src)
		for c := 0; c < h; c++ {
			yv := tensor.BF16FromFloat32Torch(src[c]).Float32()
			// Exact oracle: float32 sum in ascending rank order, then biases.
			var acc float32
			for i := 0; i < rpt; i++ {
				acc += yv
			}
			for _, bias := range in.bias {
				if bias != nil {
					acc += bias[t*h+c].Float32()
				}
			}
			want := tensor.BF16FromFloat32Torch(acc)
			if cb.X[t*h+c] != want {
				return failf("rank %d token %d channel %d: combined %v, want %v (ranks per token %d)", me, t, c, cb.X[t*h+c].Float32(), want.Float32(), rpt)
			}
			if rpt > 0 {
				v := float64(cb.X[t*h+c].Float32())
				for _, bias := range in.bias {
					if bias != nil {
						v -= float64(bias[t*h+c].Float32())
					}
				}
				got = append(got, v/float64(rpt))
				ref = append(ref, float64(in.x[t*h+c].Float32()))
			}
		}
	}
	thr := 5e-6
	if s.Enc != encBF16 {
		thr = 5e-4
	}
	if len(in.bias[0]) > 0 {
		thr = max(thr, 5e-5) // biases rounded into BF16 sums
	}
	if d := calcDiff(got, ref); d > thr {
		return failf("rank %d: calc_diff(combined/ranks-per-token, x) = %.3g > %.0g", me, d, thr)
	}
	if cb.Weights != nil {
		var gw, rw []float64
		for i, e := range in.topk.Idx {
			w := float64(in.topk.Weights[i])
			if e < 0 {
				w = 0
			}
			gw = append(gw, float64(cb.Weights[i]))
			rw = append(rw, w)
			if float64(cb.Weights[i]) != w {
				return failf("rank %d: combined weight [%d][%d] = %v, want %v", me, i/k, i%k, cb.Weights[i], w)
			}
		}
		if d := calcDiff(gw, rw); d > 1e-9 {
			return failf("rank %d: calc_diff(combined weights, weights) = %.3g", me, d)
		}
	}
	return nil
}
