package eplb

import (
	"fmt"
	"strings"
)

// Policy selects the placement algorithm.
type Policy int

const (
	// Auto uses Hierarchical when Groups % Nodes == 0 and Global otherwise,
	// as upstream deepseek-ai/EPLB rebalance_experts does.
	Auto Policy = iota
	// Hierarchical packs expert groups onto nodes, replicates experts inside
	// each node and packs the replicas onto the node's GPUs (upstream
	// rebalance_experts_hierarchical).
	Hierarchical
	// Global replicates experts over the whole cluster and packs the replicas
	// onto all GPUs: the hierarchical algorithm with one group and one node,
	// as upstream does since commit e1100fe (PR #16).
	Global
)

// String returns "auto", "hierarchical" or "global".
func (p Policy) String() string {
	switch p {
	case Auto:
		return "auto"
	case Hierarchical:
		return "hierarchical"
	case Global:
		return "global"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses "auto", "hierarchical" or "global" (case-insensitive).
// Any other string gives an error wrapping ErrConfig.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(s) {
	case "auto":
		return Auto, nil
	case "hierarchical":
		return Hierarchical, nil
	case "global":
		return Global, nil
	}
	return Auto, fmt.Errorf("%w: policy %q is not auto, hierarchical or global", ErrConfig, s)
}

// Size limits that keep a mistyped argument from allocating the machine's
// memory. Real deployments are orders of magnitude below them (DeepSeek-V3:
// 58 layers × 288 replicas ≈ 2^14 cells).
const (
	// MaxReplicas bounds Config.Replicas (physical expert slots per layer).
	MaxReplicas = 1 << 16
	// MaxCells bounds layers × experts (the loads eplbio.ParseWeights accepts),
	// layers × replicas and layers × experts × maxReplicas, the sizes of
	// Phy2Log and Log2Phy. At the limit a plan and its metrics take a few
	// hundred megabytes (`fireflyer eplb --json` about 0.5 GB).
	MaxCells = 1 << 22
)

// Config describes the cluster and the options of one Rebalance call. Field
// names follow upstream rebalance_experts(weight, num_replicas, num_groups,
// num_nodes, num_gpus).
type Config struct {
	// Replicas is the number of physical expert slots per layer (P, upstream
	// num_replicas); it must be a multiple of GPUs and at least the number of
	// experts.
	Replicas int
	// Groups is the number of expert groups (G, upstream num_groups); the
	// hierarchical policy keeps every group on one node. Ignored by Global.
	// 0 means 1 (one group: no grouping constraint); negative is ErrConfig.
	Groups int
	// Nodes is the number of server nodes (N, upstream num_nodes). Ignored
	// by Global except by the metrics, which report per-node loads when
	// GPUs % Nodes == 0. 0 means 1 (a single node); negative is ErrConfig
	// for Rebalance.
	Nodes int
	// GPUs is the total number of GPUs (R, upstream num_gpus).
	GPUs int
	// Policy selects the algorithm; the zero value is Auto.
	Policy Policy
	// NoDuplicates forbids two replicas of one expert on the same GPU
	// (upstream issue #22, PRs #27/#28). Replication then gives an expert at
	// most as many replicas as its packing domain has GPUs (GPUs/Nodes for
	// Hierarchical, GPUs for Global), and packing skips GPUs that already
	// hold the expert. When the reference plan has no duplicates the result
	// is identical to it. Requires experts × GPUs / Nodes ≥ Replicas
	// (Hierarchical) or experts × GPUs ≥ Replicas (Global), else
	// ErrInfeasible.
	NoDuplicates bool
	// Previous, when non-nil, is the plan currently deployed. The new plan's
	// nodes, the GPUs inside each node and the slots inside each GPU are then
	// permuted (an assignment problem per level, solved exactly) so that the
	// fewest slots change expert (upstream issue #25). Global treats all GPUs
	// as one node. Metrics.SlotsChanged reports the count. Previous must have
	// the same layers, experts and replicas as the new plan.
	Previous *Plan
}

// resolved holds the parameters of the algorithm actually run.
type resolved struct {
	policy          Policy // Hierarchical or Global
	layers, experts int
	replicas        int // P
	groups, nodes   int // G, N as used by the algorithm (1, 1 for Global)
	gpus            int // R
	noDup           bool
}

func (r *resolved) groupSize() int     { return r.experts / r.groups }
func (r *resolved) groupsPerNode() int { return r.groups / r.nodes }
func (r *resolved) expertsPerNode() int {
	return r.experts / r.nodes
}
func (r *resolved) slotsPerNode() int { return r.replicas / r.nodes }
func (r *resolved) gpusPerNode() int  { return r.gpus / r.nodes }
func (r *resolved) slotsPerGPU() int  { return r.replicas / r.gpus }

// orOne returns v, or 1 for 0: the zero value of Config.Groups and
// Config.Nodes.
func orOne(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// resolve checks cfg against a weight shape of layers × experts and returns
// the parameters of the policy that will run. It checks only what that
// policy uses.
func (cfg *Config) resolve(layers, experts int) (resolved, error) {
	r := resolved{layers: layers, experts: experts, replicas: cfg.Replicas, gpus: cfg.GPUs, noDup: cfg.NoDuplicates}
	groups, nodes := orOne(cfg.Groups), orOne(cfg.Nodes)
	if cfg.Replicas <= 0 {
		return r, fmt.Errorf("%w: replicas (%d) must be positive", ErrConfig, cfg.Replicas)
	}
	if cfg.Replicas > MaxReplicas {
		return r, fmt.Errorf("%w: replicas (%d) exceeds MaxReplicas (%d)", ErrConfig, cfg.Replicas, MaxReplicas)
	}
	if cfg.GPUs <= 0 {
		return r, fmt.Errorf("%w: gpus (%d) must be positive", ErrConfig, cfg.GPUs)
	}
	if layers > MaxCells/cfg.Replicas {
		return r, fmt.Errorf("%w: layers × replicas (%d × %d) exceeds MaxCells (%d)", ErrConfig, layers, cfg.Replicas, MaxCells)
	}
	switch cfg.Policy {
	case Auto:
		if groups < 0 {
			return r, fmt.Errorf("%w: groups (%d) must be positive for the auto policy", ErrConfig, groups)
		}
		if nodes < 0 {
			return r, fmt.Errorf("%w: nodes (%d) must be positive for the auto policy", ErrConfig, nodes)
		}
		if groups%nodes == 0 {
			r.policy = Hierarchical
		} else {
			r.policy = Global
		}
	case Hierarchical, Global:
		r.policy = cfg.Policy
	default:
		return r, fmt.Errorf("%w: unknown policy %d", ErrConfig, int(cfg.Policy))
	}
	if r.policy == Hierarchical {
		r.groups, r.nodes = groups, nodes
		if r.groups <= 0 {
			return r, fmt.Errorf("%w: groups (%d) must be positive", ErrConfig, r.groups)
		}
		if r.nodes <= 0 {
			return r, fmt.Errorf("%w: nodes (%d) must be positive", ErrConfig, r.nodes)
		}
		if experts%r.groups != 0 {
			return r, fmt.Errorf("%w: experts (%d) %% groups (%d) != 0", ErrConfig, experts, r.groups)
		}
		if r.groups%r.nodes != 0 {
			return r, fmt.Errorf("%w: groups (%d) %% nodes (%d) != 0", ErrConfig, r.groups, r.nodes)
		}
		if r.gpus%r.nodes != 0 {
			return r, fmt.Errorf("%w: gpus (%d) %% nodes (%d) != 0", ErrConfig, r.gpus, r.nodes)
		}
	} else {
		r.groups, r.nodes = 1, 1
	}
	if r.replicas%r.gpus != 0 {
		return r, fmt.Errorf("%w: replicas (%d) %% gpus (%d) != 0", ErrConfig, r.replicas, r.gpus)
	}
	if r.replicas < experts {
		return r, fmt.Errorf("%w: replicas (%d) < experts (%d)", ErrConfig, r.replicas, experts)
	}
	if r.noDup && r.expertsPerNode() < r.slotsPerGPU() {
		if r.policy == Hierarchical {
			return r, fmt.Errorf("%w: no-duplicates needs experts/nodes (%d) >= replicas/gpus (%d)", ErrInfeasible, r.expertsPerNode(), r.slotsPerGPU())
		}
		return r, fmt.Errorf("%w: no-duplicates needs experts (%d) >= replicas/gpus (%d)", ErrInfeasible, experts, r.slotsPerGPU())
	}
	return r, nil
}
