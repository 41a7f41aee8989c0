package eplb

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readmeWeight is the example of upstream deepseek-ai/EPLB README.md.
var readmeWeight = [][]float32{
	{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
	{20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27},
}

var readmeConfig = Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8}

func TestReadmeVector(t *testing.T) {
	plan, err := Rebalance(readmeWeight, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{
		Phy2Log: [][]int{
			{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
			{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1},
		},
		LogCnt: [][]int{
			{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1},
			{1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1},
		},
		Log2Phy: [][][]int{
			{{12, -1}, {15, 13}, {11, -1}, {6, -1}, {7, 5}, {0, 2}, {1, -1}, {3, -1}, {4, -1}, {9, -1}, {8, 10}, {14, -1}},
			{{13, -1}, {15, 11}, {8, -1}, {14, -1}, {9, -1}, {10, 12}, {2, 4}, {0, -1}, {6, 3}, {7, -1}, {1, -1}, {5, -1}},
		},
	}
	if d := cmp.Diff(want.Phy2Log, plan.Phy2Log); d != "" {
		t.Errorf("phy2log (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want.LogCnt, plan.LogCnt); d != "" {
		t.Errorf("logcnt (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want.Log2Phy, plan.Log2Phy); d != "" {
		t.Errorf("log2phy (-want +got):\n%s", d)
	}
	if err := ValidatePlan(plan); err != nil {
		t.Error(err)
	}
}

// TestReadmeLayer0Trace checks the intermediate values of the upstream
// README example's layer-0 trace through the exported
// building blocks and the metrics.
func TestReadmeLayer0Trace(t *testing.T) {
	w := readmeWeight[0]
	// Step 1: group loads and their packing onto 2 nodes.
	groups := make([]float32, 4)
	for g := range groups {
		for _, x := range w[g*3 : g*3+3] {
			groups[g] += x
		}
	}
	if d := cmp.Diff([]float32{262, 330, 116, 325}, groups); d != "" {
		t.Fatalf("group loads (-want +got):\n%s", d)
	}
	gpack, grank, err := BalancedPacking([][]float32{groups}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([][]int{{1, 0, 0, 1}}, gpack); d != "" {
		t.Errorf("gpack (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{1, 0, 1, 0}}, grank); d != "" {
		t.Errorf("grank (-want +got):\n%s", d)
	}
	// Step 3: node 0 holds experts 3..8, node 1 holds 9,10,11,0,1,2.
	node0 := []float32{61, 104, 165, 39, 4, 73}
	node1 := []float32{56, 183, 86, 90, 132, 40}
	phy, rank, cnt, err := ReplicateExperts([][]float32{node0, node1}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([][]int{{0, 1, 2, 3, 4, 5, 2, 1}, {0, 1, 2, 3, 4, 5, 1, 4}}, phy); d != "" {
		t.Errorf("replicas (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{0, 0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 0, 1, 1}}, rank); d != "" {
		t.Errorf("replica ranks (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{1, 2, 2, 1, 1, 1}, {1, 2, 1, 1, 2, 1}}, cnt); d != "" {
		t.Errorf("counts (-want +got):\n%s", d)
	}
	// Step 4: node 0's per-replica loads packed onto its 4 GPUs.
	perReplica := []float32{61, 52, 82.5, 39, 4, 73, 82.5, 52}
	pidx, prank, err := BalancedPacking([][]float32{perReplica}, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Slots [5,6 | 5,7 | 8,4 | 3,4] in node-local expert ids 2,3 | 2,4 | 5,1 | 0,1.
	slots := make([]int, 8)
	for p := range perReplica {
		slots[pidx[0][p]*2+prank[0][p]] = phy[0][p] + 3
	}
	if d := cmp.Diff([]int{5, 6, 5, 7, 8, 4, 3, 4}, slots); d != "" {
		t.Errorf("node 0 slots (-want +got):\n%s", d)
	}
	// All GPU loads and the imbalance.
	plan, err := Rebalance(readmeWeight, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Evaluate(readmeWeight, plan, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]float64{121.5, 86.5, 125, 113, 147.5, 131.5, 156, 152}, m.GPULoad[0]); d != "" {
		t.Errorf("layer 0 GPU loads (-want +got):\n%s", d)
	}
	for l, want := range []float64{1.208, 1.242} {
		if got := m.Imbalance[l]; got < want-0.0005 || got > want+0.0005 {
			t.Errorf("layer %d imbalance = %.4f, want %.3f", l, got, want)
		}
	}
	if m.Duplicates != 0 || m.SlotsChanged != -1 {
		t.Errorf("duplicates %d, slots changed %d; want 0, -1", m.Duplicates, m.SlotsChanged)
	}
}

// TestGlobalHandTrace checks the global policy on a case worked by hand:
// expert 0 (load 10) gets both redundant slots (10/1, then 10/2 > 1); the six
// replicas 10/3,10/3,10/3,1,1,1 pack onto 2 GPUs as {0,0,3} and {0,1,2}.
func TestGlobalHandTrace(t *testing.T) {
	plan, err := Rebalance([][]float32{{10, 1, 1, 1}}, Config{Replicas: 6, GPUs: 2, Policy: Global})
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{
		Phy2Log: [][]int{{0, 0, 3, 0, 1, 2}},
		PhyRank: [][]int{{0, 2, 0, 1, 0, 0}},
		LogCnt:  [][]int{{3, 1, 1, 1}},
		Log2Phy: [][][]int{{{0, 3, 1}, {4, -1, -1}, {5, -1, -1}, {2, -1, -1}}},
	}
	if d := cmp.Diff(want, plan); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
}

// TestAutoPolicy checks that Auto runs hierarchical when groups % nodes == 0
// and global otherwise, as upstream.
func TestAutoPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		same Policy
	}{
		{"groups divisible by nodes runs hierarchical", readmeConfig, Hierarchical},
		{"groups not divisible by nodes runs global", Config{Replicas: 16, Groups: 3, Nodes: 2, GPUs: 8}, Global},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auto, err := Rebalance(readmeWeight, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			forced := tc.cfg
			forced.Policy = tc.same
			if tc.same == Global {
				forced.Groups, forced.Nodes = 0, 0 // unused by global
			}
			want, err := Rebalance(readmeWeight, forced)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, auto); d != "" {
				t.Errorf("auto differs from %s (-want +got):\n%s", tc.same, d)
			}
		})
	}
	// Global on the README weights differs from hierarchical.
	g, err := Rebalance(readmeWeight, Config{Replicas: 16, GPUs: 8, Policy: Global})
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(g.Phy2Log[0], []int{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1}) {
		t.Error("global policy returned the hierarchical plan")
	}
}
