package eplb

import (
	"fmt"
	"math"
)

// Plan is the replication and placement of experts for every MoE layer, the
// outputs of upstream deepseek-ai/EPLB rebalance_experts plus the replica
// rank of each slot. Physical slot p lives on GPU p / (Replicas/GPUs) and
// node p / (Replicas/Nodes). The JSON keys are those of `fireflyer eplb
// --json`.
type Plan struct {
	// Phy2Log [layers][replicas] is the logical expert held by each physical
	// slot.
	Phy2Log [][]int `json:"phy2log"`
	// Log2Phy [layers][experts][maxReplicas] lists the slots holding each
	// expert: Log2Phy[l][e][k] is the slot holding replica rank k of expert
	// e, or −1 for k ≥ LogCnt[l][e]. maxReplicas is the largest LogCnt over
	// all layers (one value for the whole plan).
	Log2Phy [][][]int `json:"log2phy"`
	// LogCnt [layers][experts] is the number of replicas of each expert
	// (≥ 1; each row sums to replicas).
	LogCnt [][]int `json:"logcnt"`
	// PhyRank [layers][replicas] is the replica rank of the expert in each
	// slot: 0 for the expert's original copy, then 1, 2, … in the order
	// replication created them.
	PhyRank [][]int `json:"phyrank"`
}

// Layers returns the number of layers of a plan.
func (p *Plan) Layers() int { return len(p.Phy2Log) }

// Experts returns the number of logical experts per layer (0 for an empty plan).
func (p *Plan) Experts() int {
	if len(p.LogCnt) == 0 {
		return 0
	}
	return len(p.LogCnt[0])
}

// Replicas returns the number of physical slots per layer (0 for an empty plan).
func (p *Plan) Replicas() int {
	if len(p.Phy2Log) == 0 {
		return 0
	}
	return len(p.Phy2Log[0])
}

// ValidateWeights checks an expert-load matrix weight [layers][experts]: at
// least one layer and one expert (else ErrShape), rectangular (else ErrShape
// naming the ragged layer), every value finite and ≥ 0 (else ErrLoad naming
// layer and expert).
func ValidateWeights(weight [][]float32) error {
	if len(weight) == 0 {
		return fmt.Errorf("%w: zero layers", ErrShape)
	}
	e := len(weight[0])
	if e == 0 {
		return fmt.Errorf("%w: zero experts", ErrShape)
	}
	for l, row := range weight {
		if len(row) != e {
			return fmt.Errorf("%w: ragged rows: layer %d has %d experts, layer 0 has %d", ErrShape, l, len(row), e)
		}
		for j, x := range row {
			switch {
			case x != x:
				return fmt.Errorf("%w: NaN load at layer %d expert %d", ErrLoad, l, j)
			case math.IsInf(float64(x), 0):
				return fmt.Errorf("%w: infinite load at layer %d expert %d", ErrLoad, l, j)
			case x < 0:
				return fmt.Errorf("%w: negative load %g at layer %d expert %d", ErrLoad, x, l, j)
			}
		}
	}
	return nil
}

// WeightsFromFloat64 converts loads weight [layers][experts] held as float64
// (or integer token counts converted to float64) to the float32 matrix
// Rebalance takes, as upstream's weight.float() does (round to nearest). The
// result is checked with ValidateWeights; a finite value beyond the float32
// range gives ErrLoad naming layer and expert.
func WeightsFromFloat64(weight [][]float64) ([][]float32, error) {
	out := make([][]float32, len(weight))
	for l, row := range weight {
		out[l] = make([]float32, len(row))
		for e, x := range row {
			f := float32(x)
			if math.IsInf(float64(f), 0) && !math.IsInf(x, 0) {
				return nil, fmt.Errorf("%w: load %g at layer %d expert %d is outside float32 range", ErrLoad, x, l, e)
			}
			out[l][e] = f
		}
	}
	if err := ValidateWeights(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Planner computes plans and keeps its scratch space between calls, so that
// RebalanceInto allocates nothing once warm. A Planner is not safe for
// concurrent use; the zero value is ready.
type Planner struct {
	pk packer
	rp replicator
	mg migrator

	groupLoad    []float32 // [G]
	gpack, grank []int     // [G]
	order        []int     // sort scratch, max(G, P/N)
	log2mlog     []int     // [E]
	mlog2log     []int     // [E]
	tm           []float32 // [E/N] loads of one node
	phy2mlog     []int     // [P/N]
	phyrank      []int     // [P/N]
	mlogcnt      []int     // [E/N]
	tp           []float32 // [P/N] per-replica loads
	pidx, prank  []int     // [P/N]
	pphy2phy     []int     // [P/N]
}

// Rebalance computes a replication and placement plan for the per-expert
// loads weight [layers][experts] (any non-negative unit: tokens, seconds),
// mirroring upstream deepseek-ai/EPLB rebalance_experts(weight, num_replicas,
// num_groups, num_nodes, num_gpus) bit for bit: float32 arithmetic in
// upstream's order and a stable tie rule (lower index first; upstream's
// torch.sort is unstable but agrees whenever a sorted row has at most 16
// items or no ties). Options in cfg go beyond upstream (NoDuplicates,
// Previous).
//
// Errors wrap ErrShape or ErrLoad (bad weight), ErrConfig (a violated
// precondition of the policy used, named in the message), ErrInfeasible or
// ErrPlan (bad cfg.Previous). Rebalance never panics on bad input.
func Rebalance(weight [][]float32, cfg Config) (*Plan, error) {
	var pl Planner
	plan := new(Plan)
	if err := pl.RebalanceInto(plan, weight, cfg); err != nil {
		return nil, err
	}
	return plan, nil
}

// RebalanceInto is Rebalance writing into dst, reusing dst's slices when their
// shapes fit and the Planner's scratch space, so that repeated calls with the
// same shape allocate nothing. dst must not be cfg.Previous nor share storage
// with it (dst == cfg.Previous gives ErrPlan). On error dst is left
// unspecified.
func (pl *Planner) RebalanceInto(dst *Plan, weight [][]float32, cfg Config) error {
	if dst == nil {
		return fmt.Errorf("%w: nil destination plan", ErrPlan)
	}
	if dst == cfg.Previous {
		return fmt.Errorf("%w: destination plan is also the previous plan", ErrPlan)
	}
	if err := ValidateWeights(weight); err != nil {
		return err
	}
	L, E := len(weight), len(weight[0])
	r, err := cfg.resolve(L, E)
	if err != nil {
		return err
	}
	if cfg.Previous != nil {
		if err := ValidatePlan(cfg.Previous); err != nil {
			return fmt.Errorf("previous plan: %w", err)
		}
		if pl, pe, pp := cfg.Previous.Layers(), cfg.Previous.Experts(), cfg.Previous.Replicas(); pl != L || pe != E || pp != r.replicas {
			return fmt.Errorf("%w: previous plan is %d layers × %d experts × %d replicas, want %d × %d × %d", ErrPlan, pl, pe, pp, L, E, r.replicas)
		}
	}
	P := r.replicas
	dst.Phy2Log = reshape2(dst.Phy2Log, L, P)
	dst.PhyRank = reshape2(dst.PhyRank, L, P)
	dst.LogCnt = reshape2(dst.LogCnt, L, E)
	for l, w := range weight {
		pl.layer(&r, w, dst.Phy2Log[l], dst.PhyRank[l], dst.LogCnt[l])
	}
	if cfg.Previous != nil {
		for l := range L {
			pl.mg.migrateLayer(&r, dst.Phy2Log[l], dst.PhyRank[l], cfg.Previous.Phy2Log[l])
		}
	}
	k := 0
	for _, row := range dst.LogCnt {
		for _, c := range row {
			k = max(k, c)
		}
	}
	if L*E > MaxCells/k {
		return fmt.Errorf("%w: layers × experts × max replicas (%d × %d × %d) exceeds MaxCells", ErrConfig, L, E, k)
	}
	dst.Log2Phy = reshape3(dst.Log2Phy, L, E, k)
	fillLog2Phy(dst)
	return nil
}

// fillLog2Phy rebuilds Log2Phy from Phy2Log and PhyRank (upstream's scatter
// into an all −1 [L, E·K] view).
func fillLog2Phy(p *Plan) {
	for l, rows := range p.Log2Phy {
		for _, row := range rows {
			for k := range row {
				row[k] = -1
			}
		}
		for s, e := range p.Phy2Log[l] {
			rows[e][p.PhyRank[l][s]] = s
		}
	}
}

// layer runs the hierarchical algorithm (upstream
// rebalance_experts_hierarchical) on one layer; Global is the same with one
// group and one node.
func (pl *Planner) layer(r *resolved, w []float32, phy2log, phyrankOut, logcnt []int) {
	G, N := r.groups, r.nodes
	gs, gpn, epn, ppn := r.groupSize(), r.groupsPerNode(), r.expertsPerNode(), r.slotsPerNode()
	m, ppg := r.gpusPerNode(), r.slotsPerGPU()

	// Step 1: pack groups onto nodes by their float32 sums.
	pl.groupLoad = grow(pl.groupLoad, G)
	pl.gpack = grow(pl.gpack, G)
	pl.grank = grow(pl.grank, G)
	pl.order = grow(pl.order, max(G, ppn))
	for g := range G {
		var s float32
		for _, x := range w[g*gs : (g+1)*gs] {
			s += x
		}
		pl.groupLoad[g] = s
	}
	pl.pk.packRow(pl.groupLoad, N, pl.gpack, pl.grank, pl.order[:G], nil, 0)

	// Step 2: node-major "middle logical" ids.
	pl.log2mlog = grow(pl.log2mlog, r.experts)
	pl.mlog2log = grow(pl.mlog2log, r.experts)
	for g := range G {
		base := (pl.gpack[g]*gpn + pl.grank[g]) * gs
		for k := range gs {
			pl.log2mlog[g*gs+k] = base + k
			pl.mlog2log[base+k] = g*gs + k
		}
	}

	pl.tm = grow(pl.tm, epn)
	pl.phy2mlog = grow(pl.phy2mlog, ppn)
	pl.phyrank = grow(pl.phyrank, ppn)
	pl.mlogcnt = grow(pl.mlogcnt, epn)
	pl.tp = grow(pl.tp, ppn)
	pl.pidx = grow(pl.pidx, ppn)
	pl.prank = grow(pl.prank, ppn)
	pl.pphy2phy = grow(pl.pphy2phy, ppn)
	maxCnt, labels := 0, []int(nil)
	if r.noDup {
		maxCnt, labels = m, pl.phy2mlog
	}
	for n := range N {
		// Step 3: replicate inside the node.
		mlog := pl.mlog2log[n*epn : (n+1)*epn]
		for i, e := range mlog {
			pl.tm[i] = w[e]
		}
		pl.rp.replicateRow(pl.tm, ppn, pl.phy2mlog, pl.phyrank, pl.mlogcnt, maxCnt)
		// Step 4: pack the replicas onto the node's GPUs.
		for p, e := range pl.phy2mlog {
			pl.tp[p] = pl.tm[e] / float32(pl.mlogcnt[e])
		}
		pl.pk.packRow(pl.tp, m, pl.pidx, pl.prank, pl.order[:ppn], labels, epn)
		for p := range ppn {
			pl.pphy2phy[pl.pidx[p]*ppg+pl.prank[p]] = p
		}
		// Step 5: write the node's slots.
		out, outRank := phy2log[n*ppn:(n+1)*ppn], phyrankOut[n*ppn:(n+1)*ppn]
		for q, phy := range pl.pphy2phy {
			out[q] = mlog[pl.phy2mlog[phy]]
			outRank[q] = pl.phyrank[phy]
		}
		for i, e := range mlog {
			logcnt[e] = pl.mlogcnt[i]
		}
	}
}

// reshape2 returns an r × c matrix, reusing m when it already has that shape.
func reshape2(m [][]int, r, c int) [][]int {
	if len(m) == r && r > 0 && len(m[0]) == c && cap(m[0]) == c {
		ok := true
		for _, row := range m {
			if len(row) != c {
				ok = false
				break
			}
		}
		if ok {
			return m
		}
	}
	return matrix(r, c)
}

// reshape3 returns an a × b × c tensor, reusing t when it already has that
// shape.
func reshape3(t [][][]int, a, b, c int) [][][]int {
	if len(t) == a && a > 0 {
		ok := true
		for _, rows := range t {
			if len(rows) != b {
				ok = false
				break
			}
			for _, row := range rows {
				if len(row) != c {
					ok = false
					break
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			return t
		}
	}
	flat := make([]int, a*b*c)
	rows := make([][]int, a*b)
	for i := range rows {
		rows[i] = flat[i*c : (i+1)*c : (i+1)*c]
	}
	out := make([][][]int, a)
	for i := range out {
		out[i] = rows[i*b : (i+1)*b : (i+1)*b]
	}
	return out
}
