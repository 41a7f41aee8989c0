package eplb

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestRebalanceBadInput(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	w4 := [][]float32{{1, 2, 3, 4}}
	for _, tc := range []struct {
		name   string
		weight [][]float32
		cfg    Config
		err    error
		msg    string
	}{
		{"zero layers", [][]float32{}, Config{Replicas: 4, GPUs: 1, Groups: 1, Nodes: 1}, ErrShape, "zero layers"},
		{"nil weight", nil, Config{Replicas: 4, GPUs: 1, Groups: 1, Nodes: 1}, ErrShape, "zero layers"},
		{"zero experts", [][]float32{{}}, Config{Replicas: 4, GPUs: 1, Groups: 1, Nodes: 1}, ErrShape, "zero experts"},
		{"ragged rows", [][]float32{{1, 2}, {1}}, Config{Replicas: 4, GPUs: 1, Groups: 1, Nodes: 1}, ErrShape, "layer 1 has 1 experts"},
		{"NaN load", [][]float32{{1, nan}}, Config{Replicas: 2, GPUs: 1, Groups: 1, Nodes: 1}, ErrLoad, "NaN load at layer 0 expert 1"},
		{"+Inf load", [][]float32{{inf, 1}}, Config{Replicas: 2, GPUs: 1, Groups: 1, Nodes: 1}, ErrLoad, "infinite load at layer 0 expert 0"},
		{"-Inf load", [][]float32{{1}, {-inf}}, Config{Replicas: 2, GPUs: 1, Groups: 1, Nodes: 1}, ErrLoad, "infinite load at layer 1 expert 0"},
		{"negative load", [][]float32{{1, -3}}, Config{Replicas: 2, GPUs: 1, Groups: 1, Nodes: 1}, ErrLoad, "negative load -3"},
		{"hierarchical experts % groups", w4, Config{Replicas: 4, Groups: 3, Nodes: 1, GPUs: 1, Policy: Hierarchical}, ErrConfig, "experts (4) % groups (3) != 0"},
		{"hierarchical groups % nodes", w4, Config{Replicas: 4, Groups: 2, Nodes: 4, GPUs: 4, Policy: Hierarchical}, ErrConfig, "groups (2) % nodes (4) != 0"},
		{"hierarchical gpus % nodes", w4, Config{Replicas: 6, Groups: 2, Nodes: 2, GPUs: 3, Policy: Hierarchical}, ErrConfig, "gpus (3) % nodes (2) != 0"},
		{"replicas % gpus", w4, Config{Replicas: 5, Groups: 1, Nodes: 1, GPUs: 2}, ErrConfig, "replicas (5) % gpus (2) != 0"},
		{"global replicas % gpus", w4, Config{Replicas: 6, GPUs: 4, Policy: Global}, ErrConfig, "replicas (6) % gpus (4) != 0"},
		{"replicas < experts", w4, Config{Replicas: 2, Groups: 1, Nodes: 1, GPUs: 2}, ErrConfig, "replicas (2) < experts (4)"},
		{"global replicas < experts", w4, Config{Replicas: 2, GPUs: 1, Policy: Global}, ErrConfig, "replicas (2) < experts (4)"},
		{"zero replicas", w4, Config{GPUs: 1, Groups: 1, Nodes: 1}, ErrConfig, "replicas (0) must be positive"},
		{"zero gpus", w4, Config{Replicas: 4, Groups: 1, Nodes: 1}, ErrConfig, "gpus (0) must be positive"},
		{"auto with negative nodes", w4, Config{Replicas: 4, Groups: 1, Nodes: -1, GPUs: 1}, ErrConfig, "nodes (-1) must be positive"},
		{"auto with negative groups", w4, Config{Replicas: 4, Groups: -2, Nodes: 1, GPUs: 1}, ErrConfig, "groups (-2) must be positive"},
		{"hierarchical with negative nodes", w4, Config{Replicas: 4, Groups: 2, Nodes: -2, GPUs: 2, Policy: Hierarchical}, ErrConfig, "nodes (-2) must be positive"},
		{"unknown policy", w4, Config{Replicas: 4, GPUs: 1, Policy: 7}, ErrConfig, "unknown policy 7"},
		{"replicas over limit", w4, Config{Replicas: MaxReplicas * 2, GPUs: 1, Policy: Global}, ErrConfig, "exceeds MaxReplicas"},
		{"no duplicates with more slots per GPU than experts per node", w4, Config{Replicas: 12, Groups: 2, Nodes: 2, GPUs: 2, NoDuplicates: true}, ErrInfeasible, "experts/nodes (2) >= replicas/gpus (6)"},
		{"no duplicates global", [][]float32{{1, 2}}, Config{Replicas: 6, GPUs: 2, NoDuplicates: true, Policy: Global}, ErrInfeasible, "experts (2) >= replicas/gpus (3)"},
		{"previous plan of another shape", readmeWeight, Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8, Previous: &Plan{Phy2Log: [][]int{{0}}, PhyRank: [][]int{{0}}, LogCnt: [][]int{{1}}, Log2Phy: [][][]int{{{0}}}}}, ErrPlan, "previous plan is 1 layers × 1 experts × 1 replicas"},
		{"malformed previous plan", readmeWeight, Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8, Previous: &Plan{}}, ErrPlan, "zero layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Rebalance(tc.weight, tc.cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if plan != nil {
				t.Error("non-nil plan with an error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to name %q", err, tc.msg)
			}
		})
	}
}

// TestGlobalIgnoresUnusedPreconditions checks that the global policy does not
// reject what it does not use (groups and nodes).
func TestGlobalIgnoresUnusedPreconditions(t *testing.T) {
	w := [][]float32{{5, 1, 2, 7, 3}}
	for _, cfg := range []Config{
		{Replicas: 6, GPUs: 3, Groups: 2, Nodes: 4, Policy: Global}, // 5 % 2, 2 % 4, 3 % 4 all fail for hierarchical
		{Replicas: 6, GPUs: 2, Groups: 0, Nodes: 0, Policy: Global},
		{Replicas: 6, GPUs: 2, Groups: 3, Nodes: 2}, // auto → global
	} {
		if _, err := Rebalance(w, cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestBuildingBlocksBadInput(t *testing.T) {
	if _, _, err := BalancedPacking([][]float32{{1, 2, 3}}, 2); !errors.Is(err, ErrConfig) {
		t.Errorf("BalancedPacking 3 items / 2 packs: err = %v", err)
	}
	if _, _, err := BalancedPacking([][]float32{{1, 2}}, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("BalancedPacking 0 packs: err = %v", err)
	}
	if _, _, err := BalancedPacking([][]float32{{1, -2}}, 1); !errors.Is(err, ErrLoad) {
		t.Errorf("BalancedPacking negative: err = %v", err)
	}
	if _, _, _, err := ReplicateExperts([][]float32{{1, 2, 3}}, 2); !errors.Is(err, ErrConfig) {
		t.Errorf("ReplicateExperts fewer slots than experts: err = %v", err)
	}
	if _, _, _, err := ReplicateExperts([][]float32{{1}, {2, 3}}, 4); !errors.Is(err, ErrShape) {
		t.Errorf("ReplicateExperts ragged: err = %v", err)
	}
	if _, err := ParsePolicy("round-robin"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "round-robin") {
		t.Errorf("ParsePolicy: err = %v", err)
	}
	plan, err := Rebalance(readmeWeight, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Evaluate(readmeWeight[:1], plan, readmeConfig); !errors.Is(err, ErrPlan) {
		t.Errorf("Evaluate shape mismatch: err = %v", err)
	}
	if _, err := Evaluate(readmeWeight, plan, Config{GPUs: 3}); !errors.Is(err, ErrConfig) {
		t.Errorf("Evaluate replicas %% gpus: err = %v", err)
	}
	var pl Planner
	if err := pl.RebalanceInto(nil, readmeWeight, readmeConfig); !errors.Is(err, ErrPlan) {
		t.Errorf("RebalanceInto nil: err = %v", err)
	}
	cfg := readmeConfig
	cfg.Previous = plan
	if err := pl.RebalanceInto(plan, readmeWeight, cfg); !errors.Is(err, ErrPlan) {
		t.Errorf("RebalanceInto dst == previous: err = %v", err)
	}
}

func TestValidatePlanRejects(t *testing.T) {
	good := func() *Plan {
		p, err := Rebalance(readmeWeight, readmeConfig)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		mutate func(p *Plan)
		msg    string
	}{
		{"expert out of range", func(p *Plan) { p.Phy2Log[0][3] = 12 }, "phy2log 12 outside"},
		{"negative expert", func(p *Plan) { p.Phy2Log[1][0] = -1 }, "phy2log -1 outside"},
		{"count mismatch", func(p *Plan) { p.LogCnt[0][0] = 2; p.LogCnt[0][1] = 1 }, "phyrank 1 outside [0, logcnt 1)"},
		{"count sum", func(p *Plan) { p.LogCnt[0][0] = 2 }, "logcnt sums to 17"},
		{"rank out of range", func(p *Plan) { p.PhyRank[0][0] = 5 }, "phyrank 5 outside"},
		{"log2phy padding", func(p *Plan) { p.Log2Phy[0][0][1] = 3 }, "want -1 beyond logcnt"},
		{"ragged log2phy", func(p *Plan) { p.Log2Phy[0][3] = []int{6} }, "expert 3: log2phy row has 1 entries"},
		{"missing layer", func(p *Plan) { p.PhyRank = p.PhyRank[:1] }, "layers"},
		{"short row", func(p *Plan) { p.Phy2Log[1] = p.Phy2Log[1][:3] }, "16 replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			tc.mutate(p)
			err := ValidatePlan(p)
			if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want ErrPlan naming %q", err, tc.msg)
			}
		})
	}
	if err := ValidatePlan(good()); err != nil {
		t.Errorf("valid plan: %v", err)
	}
}

func TestWeightsFromFloat64(t *testing.T) {
	w, err := WeightsFromFloat64([][]float64{{1, 0.1}, {3e38, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if w[0][1] != float32(0.1) || w[1][0] != float32(3e38) {
		t.Errorf("got %v", w)
	}
	for _, tc := range []struct {
		in   [][]float64
		err  error
		want string
	}{
		{[][]float64{{1, 1e39}}, ErrLoad, "load 1e+39 at layer 0 expert 1 is outside float32 range"},
		{[][]float64{{math.NaN()}}, ErrLoad, "NaN load"},
		{[][]float64{{-1}}, ErrLoad, "negative load"},
		{[][]float64{{1}, {1, 2}}, ErrShape, "ragged"},
		{nil, ErrShape, "zero layers"},
	} {
		_, err := WeightsFromFloat64(tc.in)
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WeightsFromFloat64(%v) = %v, want %v naming %q", tc.in, err, tc.err, tc.want)
		}
	}
}

// TestZeroGroupsNodesMeanOne: the zero value of Config.Groups and
// Config.Nodes is one group and one node, as the command line defaults them,
// for Rebalance and for Evaluate.
func TestZeroGroupsNodesMeanOne(t *testing.T) {
	for _, c := range []struct{ zero, explicit Config }{
		{Config{Replicas: 16, GPUs: 8}, Config{Replicas: 16, GPUs: 8, Groups: 1, Nodes: 1}},
		{Config{Replicas: 16, GPUs: 8, Groups: 4}, Config{Replicas: 16, GPUs: 8, Groups: 4, Nodes: 1}},
		{Config{Replicas: 16, GPUs: 8, Nodes: 2}, Config{Replicas: 16, GPUs: 8, Groups: 1, Nodes: 2}}, // auto → global
		{Config{Replicas: 16, GPUs: 8, Policy: Hierarchical}, Config{Replicas: 16, GPUs: 8, Groups: 1, Nodes: 1, Policy: Hierarchical}},
	} {
		got, err := Rebalance(readmeWeight, c.zero)
		if err != nil {
			t.Fatalf("%+v: %v", c.zero, err)
		}
		want, err := Rebalance(readmeWeight, c.explicit)
		if err != nil {
			t.Fatalf("%+v: %v", c.explicit, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: plan %v, want %v as with %+v", c.zero, got.Phy2Log, want.Phy2Log, c.explicit)
		}
		mg, err := Evaluate(readmeWeight, got, c.zero)
		if err != nil {
			t.Fatal(err)
		}
		mw, err := Evaluate(readmeWeight, want, c.explicit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(mg, mw) || len(mg.NodeLoad) != len(readmeWeight) {
			t.Errorf("%+v: metrics %+v, want %+v", c.zero, mg, mw)
		}
	}
}
