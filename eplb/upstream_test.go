package eplb

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// upstreamVectors are outputs of upstream deepseek-ai/EPLB eplb.py
// (commit d52c72d) run with torch 1.13.1 on CPU, generated once outside the
// project by testdata/gen_upstream_vectors.py: 190 small cases (40 of them
// taking the global policy through groups % nodes != 0) with integer loads
// and many ties, where every sorted row has at most 16 items (torch's sort is
// then stable, so log2phy is compared too); 100 cases (40 global) with longer
// rows and continuous float32 loads (no ties between different experts;
// phy2log and logcnt compared, as replicas of one expert tie and torch may
// order them either way); and the DeepSeek-V3 shape with 4 layers under the
// hierarchical and global policies.
type upstreamCase struct {
	Weight   [][]float32 `json:"weight"`
	Replicas int         `json:"replicas"`
	Groups   int         `json:"groups"`
	Nodes    int         `json:"nodes"`
	GPUs     int         `json:"gpus"`
	Phy2Log  [][]int     `json:"phy2log"`
	LogCnt   [][]int     `json:"logcnt"`
	Log2Phy  [][][]int   `json:"log2phy"` // null when not compared
}

func TestUpstreamVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/upstream_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Source string         `json:"source"`
		Cases  []upstreamCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) != 292 {
		t.Fatalf("%d cases, want 292", len(file.Cases))
	}
	full := 0
	for i, c := range file.Cases {
		name := fmt.Sprintf("%03d_L%d_E%d_P%d_G%d_N%d_R%d", i, len(c.Weight), len(c.Weight[0]), c.Replicas, c.Groups, c.Nodes, c.GPUs)
		t.Run(name, func(t *testing.T) {
			plan, err := Rebalance(c.Weight, Config{Replicas: c.Replicas, Groups: c.Groups, Nodes: c.Nodes, GPUs: c.GPUs})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.Phy2Log, plan.Phy2Log); d != "" {
				t.Errorf("phy2log (-upstream +got):\n%s", d)
			}
			if d := cmp.Diff(c.LogCnt, plan.LogCnt); d != "" {
				t.Errorf("logcnt (-upstream +got):\n%s", d)
			}
			if c.Log2Phy != nil {
				full++
				if d := cmp.Diff(c.Log2Phy, plan.Log2Phy); d != "" {
					t.Errorf("log2phy (-upstream +got):\n%s", d)
				}
			}
		})
	}
	if full != 190 {
		t.Errorf("log2phy compared in %d cases, want 190", full)
	}
}
