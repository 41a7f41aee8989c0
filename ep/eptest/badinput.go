package eptest

import (
	"context"
	"errors"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// expect returns nil when err wraps want, and a failure otherwise.
func expect(me int, err, want error) error {
	if err == nil {
		return failf("rank %d: no error, want %v", me, want)
	}
	if !errors.Is(err, want) {
		return failf("rank %d: error %q, want one wrapping %v", me, err, want)
	}
	return nil
}

// badNormal runs a normal dispatch (and combine) where rank bad's arguments
// are spoiled by spoil; every rank must fail with want, and then a valid
// dispatch and combine must succeed (the ranks stayed in step).
func badNormal(name string, ranks, bad int, want error, spoil func(s *NormalSpec, in *normalInput, opts *ep.DispatchOptions) (combine bool)) Case {
	spec := NormalSpec{Ranks: ranks, Tokens: 8, Hidden: 128, TopK: 3, Experts: 2 * ranks, Rand: true, ZeroRank: -1, Seed: 21}
	return Case{Name: "bad-input/normal/" + name, Ranks: ranks, Short: true, Rank: func(ctx context.Context, t ep.Transport) error {
		s := spec
		b, err := ep.New(ctx, t, s.Options())
		if err != nil {
			return err
		}
		defer b.Close()
		me := t.Rank()
		in := s.input(me)
		opts := ep.DispatchOptions{NumExperts: s.Experts}
		combine := false
		if me == bad {
			combine = spoil(&s, in, &opts)
			s = spec
		} else {
			var probe NormalSpec
			combine = spoil(&probe, s.input(me), &ep.DispatchOptions{})
		}
		res, err := b.Dispatch(ctx, in.tokens, &in.topk, opts)
		if combine {
			if err != nil {
				return err
			}
			x := res.X.BF16[:res.Handle.NumRecv*s.Hidden]
			if me == bad {
				x = x[:len(x)-1]
			}
			_, err = b.Combine(ctx, x, res.Handle, ep.CombineOptions{})
		}
		if err := expect(me, err, want); err != nil {
			return err
		}
		// The Buffer is still usable and in step.
		in = s.input(me)
		res, err = b.Dispatch(ctx, in.tokens, &in.topk, ep.DispatchOptions{NumExperts: s.Experts})
		if err != nil {
			return err
		}
		_, err = b.Combine(ctx, res.X.BF16, res.Handle, ep.CombineOptions{})
		return err
	}}
}

// badLL is badNormal for a low-latency dispatch and combine.
func badLL(name string, ranks, bad int, hook bool, want error, spoil func(x *ep.Tokens, tk *ep.TopK, o *ep.LowLatencyOptions) (combine bool)) Case {
	s := LowLatencySpec{Ranks: ranks, MaxTokens: 8, Hidden: 256, TopK: 3, Experts: 2 * ranks, ZeroRank: -1, Seed: 22}
	return Case{Name: "bad-input/low-latency/" + name, Ranks: ranks, Short: true, Rank: func(ctx context.Context, t ep.Transport) error {
		b, err := ep.New(ctx, t, s.Options())
		if err != nil {
			return err
		}
		defer b.Close()
		me := t.Rank()
		in := s.input(me)
		x := ep.Tokens{N: in.n, Hidden: s.Hidden, BF16: in.x}
		tk := in.topk
		o := ep.LowLatencyOptions{ReturnRecvHook: hook}
		var combine bool
		if me == bad {
			combine = spoil(&x, &tk, &o)
		} else {
			var x2 ep.Tokens
			var tk2 ep.TopK
			var o2 ep.LowLatencyOptions
			combine = spoil(&x2, &tk2, &o2)
		}
		res, err := b.LowLatencyDispatch(ctx, x, tk, o)
		if err == nil && res.Hook != nil {
			err = res.Hook(ctx)
		}
		if combine {
			if err != nil {
				return err
			}
			ctk := in.topk
			if me == bad {
				ctk.Idx = append([]int32(nil), ctk.Idx...)
				ctk.Idx[0] = (ctk.Idx[0] + 1) % int32(s.Experts)
			}
			y := make([]tensor.BF16, len(b.NextCombineBuffer()))
			var cr *ep.LowLatencyCombineResult
			cr, err = b.LowLatencyCombine(ctx, y, ctk, res.Handle, ep.LowLatencyCombineOptions{ReturnRecvHook: hook})
			if err == nil && cr.Hook != nil {
				err = cr.Hook(ctx)
			}
		}
		if err := expect(me, err, want); err != nil {
			return err
		}
		// Still usable and in step.
		x = ep.Tokens{N: in.n, Hidden: s.Hidden, BF16: in.x}
		res, err = b.LowLatencyDispatch(ctx, x, in.topk, ep.LowLatencyOptions{})
		if err != nil {
			return err
		}
		y := make([]tensor.BF16, len(b.NextCombineBuffer()))
		_, err = b.LowLatencyCombine(ctx, y, in.topk, res.Handle, ep.LowLatencyCombineOptions{})
		return err
	}}
}

func badInputCases() []Case {
	cs := []Case{
		badNormal("topk-out-of-range", 4, 1, ep.ErrRange, func(s *NormalSpec, in *normalInput, o *ep.DispatchOptions) bool {
			if len(in.topk.Idx) > 0 {
				in.topk.Idx[len(in.topk.Idx)-1] = int32(s.Experts)
			}
			o.Layout = nil
			return false
		}),
		badNormal("x-length", 3, 0, ep.ErrShape, func(s *NormalSpec, in *normalInput, o *ep.DispatchOptions) bool {
			if in.tokens.BF16 != nil {
				in.tokens.BF16 = in.tokens.BF16[:len(in.tokens.BF16)-1]
			}
			return false
		}),
		badNormal("hidden-disagrees", 4, 2, ep.ErrShape, func(s *NormalSpec, in *normalInput, o *ep.DispatchOptions) bool {
			in.tokens = ep.Tokens{N: in.n, Hidden: 64, BF16: make([]tensor.BF16, in.n*64)}
			return false
		}),
		badNormal("experts-disagree", 2, 1, ep.ErrShape, func(s *NormalSpec, in *normalInput, o *ep.DispatchOptions) bool {
			o.NumExperts = 2 * s.Experts
			return false
		}),
		badNormal("encoding-disagrees", 3, 1, ep.ErrShape, func(s *NormalSpec, in *normalInput, o *ep.DispatchOptions) bool {
			if in.x != nil {
				in.tokens = fp8Tokens(in.x, in.n, s.Hidden, false)
			}
			return false
		}),
		badNormal("topk-K-disagrees", 4, 3, ep.ErrShape, func(s *NormalSpec, in *normalInput, o *ep.DispatchOptions) bool {
			in.topk = ep.TopK{K: 1, Idx: make([]int32, in.n)}
			return false
		}),
		badNormal("combine-x-length", 4, 2, ep.ErrShape, func(*NormalSpec, *normalInput, *ep.DispatchOptions) bool { return true }),
		badLL("too-many-tokens", 4, 1, false, ep.ErrRange, func(x *ep.Tokens, tk *ep.TopK, o *ep.LowLatencyOptions) bool {
			if x.Hidden > 0 {
				n := 9
				*x = ep.Tokens{N: n, Hidden: x.Hidden, BF16: make([]tensor.BF16, n*x.Hidden)}
				*tk = ep.TopK{K: tk.K, Idx: make([]int32, n*tk.K), Weights: make([]float32, n*tk.K)}
			}
			return false
		}),
		badLL("hidden-mismatch-hook", 3, 0, true, ep.ErrShape, func(x *ep.Tokens, tk *ep.TopK, o *ep.LowLatencyOptions) bool {
			if x.Hidden > 0 {
				*x = ep.Tokens{N: x.N, Hidden: 128, BF16: make([]tensor.BF16, x.N*128)}
			}
			return false
		}),
		badLL("fp8-options-disagree", 4, 2, false, ep.ErrShape, func(x *ep.Tokens, tk *ep.TopK, o *ep.LowLatencyOptions) bool {
			o.UseFP8 = true
			return false
		}),
		badLL("expert-out-of-range", 2, 1, true, ep.ErrRange, func(x *ep.Tokens, tk *ep.TopK, o *ep.LowLatencyOptions) bool {
			if len(tk.Idx) > 0 {
				tk.Idx = append([]int32(nil), tk.Idx...)
				tk.Idx[0] = -2
			}
			return false
		}),
		badLL("combine-topk-differs", 4, 3, false, ep.ErrHandle, func(*ep.Tokens, *ep.TopK, *ep.LowLatencyOptions) bool { return true }),
		{Name: "bad-input/options-disagree", Ranks: 3, Short: true, Rank: func(ctx context.Context, t ep.Transport) error {
			o := ep.Options{NormalBytes: 1 << 16}
			if t.Rank() == 1 {
				o.NormalBytes = 1 << 17
			}
			_, err := ep.New(ctx, t, o)
			return expect(t.Rank(), err, ep.ErrConfig)
		}},
		{Name: "bad-input/capacity", Ranks: 4, Short: true, Rank: func(ctx context.Context, t ep.Transport) error {
			s := NormalSpec{Ranks: 4, Tokens: 64, Hidden: 512, TopK: 4, Experts: 8, ZeroRank: -1, Seed: 23}
			b, err := ep.New(ctx, t, ep.Options{NormalBytes: 1 << 14})
			if err != nil {
				return err
			}
			defer b.Close()
			in := s.input(t.Rank())
			_, err = b.Dispatch(ctx, in.tokens, &in.topk, ep.DispatchOptions{NumExperts: s.Experts})
			return expect(t.Rank(), err, ep.ErrCapacity)
		}},
	}
	return cs
}
