// Package eplb plans expert replication and placement for mixture-of-experts
// (MoE) inference: given the load of every expert in every MoE layer, it
// decides how many replicas each expert gets and on which GPU every replica
// (physical slot) lives, so that GPUs carry even loads.
//
// It mirrors deepseek-ai/EPLB (eplb.py, rebalance_experts) bit for bit:
// float32 arithmetic in upstream's order and a stable tie rule (lower index
// first), so the upstream README example reproduces exactly, as do 292
// vectors produced by running upstream eplb.py with torch 1.13.1 on CPU
// (testdata/upstream_vectors.json). Two policies:
//
//   - Hierarchical (upstream rebalance_experts_hierarchical): pack expert
//     groups onto nodes, replicate hot experts inside each node, pack the
//     replicas onto the node's GPUs. Used when groups % nodes == 0.
//   - Global: the same with one group and one node (upstream since commit
//     e1100fe): replicate over the whole cluster and pack onto all GPUs.
//
// Auto picks between them as upstream does. The building blocks
// BalancedPacking (upstream balanced_packing) and ReplicateExperts (upstream
// replicate_experts) are exported.
//
// Beyond upstream, each behind a Config option: NoDuplicates forbids two
// replicas of one expert on one GPU (upstream issue #22, PRs #27/#28);
// Previous makes placement migration-aware, permuting nodes, GPUs and slots
// of the new plan by exact assignment so the fewest expert weights move
// (upstream issue #25). Evaluate reports per-GPU and per-node loads,
// balancedness (mean/max), imbalance (max/mean), duplicates and slots changed.
// The sub-package eplb/eplbio reads the load and plan formats of
// `fireflyer eplb` (eplbio.ParseWeights, eplbio.ReadPlan); eplb/svg draws
// per-GPU loads before and after (svg.Write).
//
// Plans are plain data computed by pure functions (no goroutines, no I/O). A
// Planner reuses its scratch space: RebalanceInto allocates nothing once warm.
//
// Tie rule: upstream sorts with torch.sort, which is unstable; it agrees with
// the stable rule whenever a sorted row has at most 16 items or no ties.
// Rows longer than 16 with ties between different experts (not replicas of
// one expert) may be placed differently than a given torch build would.
// Group loads are summed sequentially in float32, which equals torch's sum
// whenever the sums are exact (integer loads below 2^24, the usual case).
//
// The shortest useful program:
//
//	weight := [][]float32{{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86}}
//	plan, err := eplb.Rebalance(weight, eplb.Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8})
//	if err != nil {
//		log.Fatal(err)
//	}
//	fmt.Println(plan.Phy2Log[0]) // [5 6 5 7 8 4 3 4 10 9 10 2 0 1 11 1]
//
// Where it sits: a compute package (docs/architecture.md), pure: it imports
// the standard library only; eplb/eplbio and eplb/svg do its I/O and
// drawing.
package eplb
