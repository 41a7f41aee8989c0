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
