package eplb

import (
	"fmt"
	"math"
)

// Metrics describes how well a plan balances a load. Loads are in the unit
// of the weight (tokens, seconds), computed in float64; a slot of expert e
// carries weight[l][e] / LogCnt[l][e]. The JSON keys are those of the
// "metrics" object of `fireflyer eplb --json`.
type Metrics struct {
	// GPULoad [layers][gpus] is the load of each GPU: the sum over its slots.
	GPULoad [][]float64 `json:"gpu_load"`
	// NodeLoad [layers][nodes] is the load of each node; nil when Nodes ≤ 0
	// or GPUs % Nodes != 0 (possible under the global policy).
	NodeLoad [][]float64 `json:"node_load"`
	// Balancedness [layers] is mean/max of the GPU loads (vLLM's
	// "balancedness", 1 = perfect; 1 for an all-zero layer).
	Balancedness []float64 `json:"balancedness"`
	// Imbalance [layers] is max/mean of the GPU loads (≥ 1, 1 = perfect; 1
	// for an all-zero layer).
	Imbalance []float64 `json:"imbalance"`
	// MeanBalancedness is the mean of Balancedness over layers.
	MeanBalancedness float64 `json:"mean_balancedness"`
	// MaxImbalance is the largest Imbalance over layers.
	MaxImbalance float64 `json:"max_imbalance"`
	// BaselineGPULoad [layers][gpus] is the GPU load without replication,
	// experts in order: expert e on GPU e·gpus/experts.
	BaselineGPULoad [][]float64 `json:"baseline_gpu_load"`
	// BaselineImbalance [layers] is max/mean of BaselineGPULoad.
	BaselineImbalance []float64 `json:"baseline_imbalance"`
	// Duplicates counts slots whose expert already has another slot on the
	// same GPU (upstream issue #22); 0 means no GPU holds an expert twice.
	Duplicates int `json:"duplicates"`
	// SlotsChanged counts the slots, over all layers, whose expert differs
	// from the previous plan's, that is the expert weights to move; −1 when
	// there is no previous plan.
	SlotsChanged int `json:"slots_changed"`
}

// Evaluate computes the Metrics of plan for the loads weight [layers][experts]
// on cfg.GPUs GPUs in cfg.Nodes nodes (0 means 1; node loads are skipped
// when Nodes < 0 or GPUs % Nodes != 0),
// and SlotsChanged against cfg.Previous when it is non-nil. Other cfg fields
// are ignored. Errors: ErrShape/ErrLoad for bad weights, ErrPlan for a
// malformed plan or shapes that do not match, ErrConfig when GPUs ≤ 0 or
// replicas % GPUs != 0.
func Evaluate(weight [][]float32, plan *Plan, cfg Config) (*Metrics, error) {
	if err := ValidateWeights(weight); err != nil {
		return nil, err
	}
	if err := ValidatePlan(plan); err != nil {
		return nil, err
	}
	L, E, P := len(weight), len(weight[0]), plan.Replicas()
	if plan.Layers() != L || plan.Experts() != E {
		return nil, fmt.Errorf("%w: plan is %d layers × %d experts, weight is %d × %d", ErrPlan, plan.Layers(), plan.Experts(), L, E)
	}
	R, N := cfg.GPUs, orOne(cfg.Nodes)
	if R <= 0 || P%R != 0 {
		return nil, fmt.Errorf("%w: replicas (%d) %% gpus (%d) != 0", ErrConfig, P, R)
	}
	if cfg.Previous != nil {
		if err := ValidatePlan(cfg.Previous); err != nil {
			return nil, fmt.Errorf("previous plan: %w", err)
		}
		if cfg.Previous.Layers() != L || cfg.Previous.Replicas() != P {
			return nil, fmt.Errorf("%w: previous plan is %d layers × %d replicas, plan is %d × %d", ErrPlan, cfg.Previous.Layers(), cfg.Previous.Replicas(), L, P)
		}
	}
	c := P / R
	m := &Metrics{
		GPULoad:           make([][]float64, L),
		Balancedness:      make([]float64, L),
		Imbalance:         make([]float64, L),
		BaselineGPULoad:   make([][]float64, L),
		BaselineImbalance: make([]float64, L),
		SlotsChanged:      -1,
	}
	withNodes := N > 0 && R%N == 0
	if withNodes {
		m.NodeLoad = make([][]float64, L)
	}
	seen := make([]int, E) // seen[e] = GPU index + 1 of e's last slot
	for l, w := range weight {
		gl := make([]float64, R)
		clear(seen)
		for s, e := range plan.Phy2Log[l] {
			g := s / c
			gl[g] += float64(w[e]) / float64(plan.LogCnt[l][e])
			if seen[e] == g+1 {
				m.Duplicates++
			}
			seen[e] = g + 1
		}
		m.GPULoad[l] = gl
		m.Balancedness[l], m.Imbalance[l] = Balance(gl)
		if withNodes {
			nl := make([]float64, N)
			for g, x := range gl {
				nl[g/(R/N)] += x
			}
			m.NodeLoad[l] = nl
		}
		bl := make([]float64, R)
		for e, x := range w {
			bl[e*R/E] += float64(x)
		}
		m.BaselineGPULoad[l] = bl
		_, m.BaselineImbalance[l] = Balance(bl)
		m.MeanBalancedness += m.Balancedness[l] / float64(L)
		m.MaxImbalance = max(m.MaxImbalance, m.Imbalance[l])
	}
	if cfg.Previous != nil {
		m.SlotsChanged = SlotsChanged(plan, cfg.Previous)
	}
	return m, nil
}

// Balance returns the balancedness mean/max and the imbalance max/mean of
// per-GPU loads (1, 1 when all are zero or there are none), the two figures
// Metrics holds per layer. Loads are non-negative and finite (token
// counts); when one is NaN, ±Inf or negative, both results are NaN, so a
// bad load cannot pass for a balanced one. Rebalance and Metrics reject
// such loads with ErrLoad before they get here.
func Balance(loads []float64) (balancedness, imbalance float64) {
	var sum, mx float64
	for _, x := range loads {
		if !(x >= 0) || math.IsInf(x, 1) {
			return math.NaN(), math.NaN()
		}
		sum += x
		mx = max(mx, x)
	}
	if mx == 0 {
		return 1, 1
	}
	mean := sum / float64(len(loads))
	return mean / mx, mx / mean
}

// SlotsChanged counts the slots, over all layers, whose expert in plan
// differs from prev: the expert weights a switch from prev to plan moves.
// Layers or slots present in only one of the two plans count as changed; a
// nil plan has no layers.
func SlotsChanged(plan, prev *Plan) int {
	if plan == nil {
		plan = &Plan{}
	}
	if prev == nil {
		prev = &Plan{}
	}
	n := 0
	for l := range max(len(plan.Phy2Log), len(prev.Phy2Log)) {
		var a, b []int
		if l < len(plan.Phy2Log) {
			a = plan.Phy2Log[l]
		}
		if l < len(prev.Phy2Log) {
			b = prev.Phy2Log[l]
		}
		for s := range max(len(a), len(b)) {
			if s >= len(a) || s >= len(b) || a[s] != b[s] {
				n++
			}
		}
	}
	return n
}
