package eplb

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestSlotsChangedNil: a nil plan counts as one with no layers, so every slot
// of the other plan has changed (it used to dereference nil).
func TestSlotsChangedNil(t *testing.T) {
	p := &Plan{Phy2Log: [][]int{{0, 1, 1}, {1, 0, 0}}}
	for _, tc := range []struct {
		name      string
		plan, old *Plan
		want      int
	}{
		{"both-nil", nil, nil, 0},
		{"prev-nil", p, nil, 6},
		{"plan-nil", nil, p, 6},
		{"same", p, p, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SlotsChanged(tc.plan, tc.old); got != tc.want {
				t.Fatalf("SlotsChanged = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSizeLimits: plans past MaxCells fail fast with ErrConfig. MaxCells
// used to be 2^26, at which a 2 KB CSV (1024 layers × 1 expert, --replicas
// 65536) made `fireflyer eplb --json` use 4.5 GB. (The parser's limits are
// tested in eplb/eplbio.)
func TestSizeLimits(t *testing.T) {
	t.Run("Rebalance/layers-x-replicas", func(t *testing.T) {
		w := make([][]float32, MaxCells/MaxReplicas+1)
		for l := range w {
			w[l] = []float32{1}
		}
		_, err := Rebalance(w, Config{Replicas: MaxReplicas, GPUs: 1, Policy: Global})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "MaxCells") {
			t.Fatalf("err %v, want ErrConfig naming MaxCells", err)
		}
	})
}

// TestBalance: balancedness mean/max and imbalance max/mean, 1 and 1 for
// all-zero loads.
func TestBalance(t *testing.T) {
	if b, i := Balance([]float64{1, 3}); b != 2.0/3 || i != 1.5 {
		t.Fatalf("Balance(1, 3) = %v, %v; want 2/3, 1.5", b, i)
	}
	if b, i := Balance([]float64{0, 0}); b != 1 || i != 1 {
		t.Fatalf("Balance(0, 0) = %v, %v; want 1, 1", b, i)
	}
	for _, bad := range [][]float64{{math.NaN(), 1}, {1, math.NaN()}, {-1, 1}, {-1, -2}, {math.Inf(1), 1}, {1, math.Inf(-1)}} {
		if b, i := Balance(bad); !math.IsNaN(b) || !math.IsNaN(i) {
			t.Errorf("Balance(%v) = %v, %v; want NaN, NaN", bad, b, i)
		}
	}
}
