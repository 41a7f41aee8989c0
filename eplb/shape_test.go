package eplb

import (
	"testing"
)

// TestDeepSeekV3Shape checks every policy and option on the production shape
// (58 layers × 256 experts, 288 slots, 8 groups, 4 nodes, 32 GPUs).
func TestDeepSeekV3Shape(t *testing.T) {
	w := deepseekWeights(1)
	prev, err := Rebalance(deepseekWeights(2), deepseekConfig)
	if err != nil {
		t.Fatal(err)
	}
	global := deepseekConfig
	global.Policy = Global
	for _, tc := range []struct {
		name string
		cfg  Config
		hier bool
	}{
		{"hierarchical", deepseekConfig, true},
		{"global", global, false},
		{"hierarchical no duplicates", Config{Replicas: 288, Groups: 8, Nodes: 4, GPUs: 32, NoDuplicates: true}, true},
		{"global no duplicates", Config{Replicas: 288, GPUs: 32, Policy: Global, NoDuplicates: true}, false},
		{"hierarchical with previous", Config{Replicas: 288, Groups: 8, Nodes: 4, GPUs: 32, Previous: prev}, true},
		// Upstream issue #22: 256 + 32 redundant experts, 16 groups, 2 nodes, 32 GPUs.
		{"issue 22 shape no duplicates", Config{Replicas: 288, Groups: 16, Nodes: 2, GPUs: 32, NoDuplicates: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Rebalance(w, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, scenario{weight: w, cfg: tc.cfg, hier: tc.hier}, plan)
			m, err := Evaluate(w, plan, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cfg.NoDuplicates && m.Duplicates != 0 {
				t.Errorf("%d duplicates with NoDuplicates", m.Duplicates)
			}
			for l := range m.Imbalance {
				if m.Imbalance[l] > m.BaselineImbalance[l] {
					t.Errorf("layer %d: imbalance %.3f worse than no replication %.3f", l, m.Imbalance[l], m.BaselineImbalance[l])
				}
			}
			if tc.cfg.Previous != nil {
				fresh, err := Rebalance(w, deepseekConfig)
				if err != nil {
					t.Fatal(err)
				}
				if m.SlotsChanged > SlotsChanged(fresh, prev) {
					t.Errorf("migration moved %d slots, the fresh plan %d", m.SlotsChanged, SlotsChanged(fresh, prev))
				}
				t.Logf("slots changed: %d with migration, %d without (of %d)", m.SlotsChanged, SlotsChanged(fresh, prev), 58*288)
			}
			t.Logf("max imbalance %.4f (no replication: first layer %.4f), duplicates %d", m.MaxImbalance, m.BaselineImbalance[0], m.Duplicates)
		})
	}
}

// TestRebalanceIntoAllocs checks that a warm Planner allocates nothing.
func TestRebalanceIntoAllocs(t *testing.T) {
	w := deepseekWeights(1)
	prev, err := Rebalance(deepseekWeights(2), deepseekConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		deepseekConfig,
		{Replicas: 288, GPUs: 32, Policy: Global},
		{Replicas: 288, Groups: 8, Nodes: 4, GPUs: 32, NoDuplicates: true, Previous: prev},
	} {
		var pl Planner
		var plan Plan
		allocs := testing.AllocsPerRun(3, func() {
			if err := pl.RebalanceInto(&plan, w, cfg); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v policy: %v allocations per warm call", cfg.Policy, allocs)
		}
	}
}

// TestRebalanceAllocsPerLayer checks that a cold Rebalance allocates a fixed
// number of times whatever the number of layers (no allocation per layer).
func TestRebalanceAllocsPerLayer(t *testing.T) {
	w := deepseekWeights(1)
	count := func(layers int) float64 {
		return testing.AllocsPerRun(3, func() {
			if _, err := Rebalance(w[:layers], deepseekConfig); err != nil {
				t.Fatal(err)
			}
		})
	}
	if one, all := count(1), count(len(w)); one != all {
		t.Errorf("Rebalance allocates %v times for 1 layer, %v for %d layers", one, all, len(w))
	}
}
