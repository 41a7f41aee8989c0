package eplb

import "testing"

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
