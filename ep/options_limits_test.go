package ep_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestNewHugeOptions checks that options whose region would be absurdly
// large, or whose size arithmetic overflows an int, fail with ErrConfig on
// every rank instead of panicking in make, wrapping around to a tiny region
// or reserving terabytes.
func TestNewHugeOptions(t *testing.T) {
	maxInt := int(^uint(0) >> 1)
	cases := []ep.Options{
		{NormalBytes: 1 << 62},
		{NormalBytes: maxInt},
		{NormalBytes: ep.MaxRegionBytes + 1024},
		{MaxExperts: 1 << 60},
		{MaxExperts: maxInt},
		{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: 1 << 40, Hidden: 1 << 20, NumExperts: 2, MaxTopK: 64}},
		{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: 1 << 20, Hidden: 1 << 16, NumExperts: 2, MaxTopK: 64}},
		{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: 1, Hidden: maxInt, NumExperts: 2}},
		{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: maxInt, Hidden: 128, NumExperts: 2}},
		{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: 1, Hidden: 128, NumExperts: maxInt - 1}},
	}
	for i, o := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var got [2]error
			err := inproc.Run(context.Background(), 2, func(ctx context.Context, tr ep.Transport) (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				b, err := ep.New(ctx, tr, o)
				if err == nil {
					defer b.Close()
					err = fmt.Errorf("New succeeded with a region of %d bytes", b.RegionBytes())
				}
				got[tr.Rank()] = err
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for r, e := range got {
				if !errors.Is(e, ep.ErrConfig) {
					t.Errorf("rank %d: %v, want ErrConfig", r, e)
				}
			}
		})
	}
}

// TestOverflowingShapes: shapes whose products overflow int (N×Hidden,
// N×K) must fail with ErrShape, not pass the length checks as 0 and panic
// in slicing; absurd rank and expert counts fail with ErrConfig.
func TestOverflowingShapes(t *testing.T) {
	if _, err := ep.ComputeLayout(ep.TopK{K: 1 << 32}, 1<<32, 2, 4); !errors.Is(err, ep.ErrShape) {
		t.Errorf("ComputeLayout(N=K=2^32) = %v, want ErrShape", err)
	}
	if _, err := ep.ComputeLayout(ep.TopK{K: 1, Idx: []int32{0}}, 1, 1<<40, 1<<40); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("ComputeLayout(R=E=2^40) = %v, want ErrConfig", err)
	}
	ll := &ep.LowLatencyConfig{MaxTokensPerRank: 4, Hidden: 128, NumExperts: 4}
	err := inproc.RunBuffers(context.Background(), 2, ep.Options{NormalBytes: 1 << 16, LowLatency: ll}, func(ctx context.Context, b *ep.Buffer) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("rank %d: panic: %v", b.Rank(), r)
			}
		}()
		if _, err := b.Dispatch(ctx, ep.Tokens{N: 1 << 32, Hidden: 1 << 32}, &ep.TopK{K: 1 << 32}, ep.DispatchOptions{NumExperts: 4}); !errors.Is(err, ep.ErrShape) {
			return fmt.Errorf("rank %d: Dispatch with N×Hidden overflowing: %v, want ErrShape", b.Rank(), err)
		}
		if _, err := b.Dispatch(ctx, ep.Tokens{N: 1 << 32, Hidden: 1, BF16: nil}, &ep.TopK{K: 1 << 32}, ep.DispatchOptions{NumExperts: 4}); !errors.Is(err, ep.ErrShape) {
			return fmt.Errorf("rank %d: Dispatch with N×K overflowing: %v, want ErrShape", b.Rank(), err)
		}
		if _, err := b.LowLatencyDispatch(ctx, ep.Tokens{N: 2, Hidden: 128, BF16: make([]tensor.BF16, 256)}, ep.TopK{K: 1 << 62}, ep.LowLatencyOptions{}); !errors.Is(err, ep.ErrShape) {
			return fmt.Errorf("rank %d: LowLatencyDispatch with N×K overflowing: %v, want ErrShape", b.Rank(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOptionsTruncated: values that travel to the other ranks as uint32
// must be rejected when they do not fit, not silently truncated
// (ExpertAlignment 2^32+1 used to reach peers as 1 while this rank rounded
// its per-expert counts up to 4294967297).
func TestOptionsTruncated(t *testing.T) {
	err := inproc.RunBuffers(context.Background(), 2, ep.Options{NormalBytes: 1 << 16}, func(ctx context.Context, b *ep.Buffer) error {
		x := ep.Tokens{N: 1, Hidden: 8, BF16: make([]tensor.BF16, 8)}
		tk := &ep.TopK{K: 1, Idx: []int32{int32(b.Rank())}}
		for _, o := range []ep.DispatchOptions{
			{NumExperts: 2, ExpertAlignment: 1<<32 + 1},
			{NumExperts: 2, NumWorstTokens: 1<<32 + 5},
		} {
			if _, err := b.Dispatch(ctx, x, tk, o); !errors.Is(err, ep.ErrRange) {
				return fmt.Errorf("rank %d: Dispatch(%+v) = %v, want ErrRange", b.Rank(), o, err)
			}
		}
		if _, err := b.Dispatch(ctx, ep.Tokens{N: 1 << 31, Hidden: 1}, &ep.TopK{K: 1}, ep.DispatchOptions{NumExperts: 2}); !errors.Is(err, ep.ErrShape) {
			return fmt.Errorf("rank %d: Dispatch(N=2^31) = %v, want ErrShape", b.Rank(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
