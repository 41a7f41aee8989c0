package ep_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
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
