package eplb

import (
	"errors"
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

// TestSizeLimits: inputs past MaxCells fail fast with ErrShape/ErrConfig.
// MaxCells used to be 2^26, at which a 2 KB CSV (1024 layers × 1 expert,
// --replicas 65536) made `fireflyer eplb --json` use 4.5 GB, and 98 MB of
// JSON loads 6.5 GB before any check ran.
func TestSizeLimits(t *testing.T) {
	row := strings.Repeat("1,", 1023) + "1"
	layers := MaxCells/1024 + 1
	csv := strings.Repeat(row+"\n", layers)
	js := "[" + strings.Repeat("["+row+"],", layers-1) + "[" + row + "]]"
	for name, in := range map[string]string{"csv": csv, "json": js} {
		t.Run("ParseWeights/"+name, func(t *testing.T) {
			_, err := ParseWeights(strings.NewReader(in))
			if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "MaxCells") {
				t.Fatalf("%d × 1024 loads: err %v, want ErrShape naming MaxCells", layers, err)
			}
		})
	}
	t.Run("ParseWeights/at-limit", func(t *testing.T) {
		if testing.Short() {
			t.Skip("parses 2^22 loads")
		}
		w, err := ParseWeights(strings.NewReader(strings.Repeat(row+"\n", MaxCells/1024)))
		if err != nil || len(w) != MaxCells/1024 {
			t.Fatalf("%d × 1024 loads: %d rows, err %v", MaxCells/1024, len(w), err)
		}
	})
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

// TestParseWeightsBOM: a UTF-8 byte-order mark (Excel's "CSV UTF-8") is
// skipped; it used to fail with `"\ufeff1" is not a number`.
func TestParseWeightsBOM(t *testing.T) {
	for _, in := range []string{"\ufeff1,2\n3,4\n", "\ufeff[[1,2],[3,4]]"} {
		w, err := ParseWeights(strings.NewReader(in))
		if err != nil || len(w) != 2 || w[1][1] != 4 {
			t.Errorf("ParseWeights(%q) = %v, %v", in, w, err)
		}
	}
}
