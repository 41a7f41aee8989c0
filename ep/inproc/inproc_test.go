package inproc_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/eptest"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
)

func TestConformance(t *testing.T) {
	eptest.Run(t, func(ctx context.Context, ranks int, fn func(context.Context, ep.Transport) error) error {
		return inproc.Run(ctx, ranks, fn)
	})
}

// TestNewRanksRange: a rank count outside 1..MaxRanks fails with ErrConfig
// instead of allocating per-rank tables for it (1<<40 ranks used to be a
// fatal out-of-memory).
func TestNewRanksRange(t *testing.T) {
	for _, n := range []int{0, -1, inproc.MaxRanks + 1, 1 << 40} {
		if _, err := inproc.New(n); !errors.Is(err, ep.ErrConfig) {
			t.Errorf("New(%d) = %v, want ErrConfig", n, err)
		}
	}
}

// TestRunNilFn: Run and RunBuffers refuse a nil function with ErrConfig
// before starting any rank (every rank used to panic on it, recovered into
// an error that wrapped no sentinel).
func TestRunNilFn(t *testing.T) {
	ctx := context.Background()
	if err := inproc.Run(ctx, 2, nil); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("Run(nil fn) = %v, want ErrConfig", err)
	}
	if err := inproc.RunBuffers(ctx, 2, ep.Options{}, nil); !errors.Is(err, ep.ErrConfig) {
		t.Errorf("RunBuffers(nil fn) = %v, want ErrConfig", err)
	}
}
