package ep

// RanksPerNode is the number of ranks that share a node's scale-up domain
// (DeepEP's NUM_MAX_NVL_PEERS); Layout.PerNode groups ranks by it.
const RanksPerNode = 8

// Layout says where each token goes, as deep_ep.Buffer.get_dispatch_layout
// returns it.
type Layout struct {
	// NumTokens N, NumRanks R and NumExperts E that the layout was built for.
	NumTokens, NumRanks, NumExperts int
	// PerRank [R]: tokens sent to each rank, a token counted once per rank
	// however many of its experts live there (num_tokens_per_rank).
	PerRank []int32
	// PerNode [ceil(R/8)]: tokens reaching at least one rank of each node of
	// 8 ranks (num_tokens_per_rdma_rank; upstream returns None for one node).
	PerNode []int32
	// PerExpert [E]: (token, expert) pairs per expert (num_tokens_per_expert).
	PerExpert []int32
	// InRank [N][R]: whether token t goes to rank r (is_token_in_rank).
	InRank []bool
}

// Bounds on ComputeLayout's counts, far above any expert-parallel group,
// so that its per-rank and per-expert tables stay small.
const (
	maxLayoutRanks   = 1 << 16
	maxLayoutExperts = 1 << 24
)

// ComputeLayout builds the Layout of topk for numRanks ranks and numExperts
// experts (numExperts a positive multiple of numRanks, experts assigned to
// ranks in contiguous blocks of numExperts/numRanks). Entries −1 are skipped.
// Errors: ErrConfig for bad counts (numRanks above 65536 or numExperts above
// 2^24 included), ErrShape/ErrRange for a bad topk (the
// message names the argument).
//
// Upstream: deep_ep.Buffer.get_dispatch_layout (csrc/kernels/layout.cu).
func ComputeLayout(topk TopK, numTokens, numRanks, numExperts int) (*Layout, error) {
	if numRanks <= 0 || numRanks > maxLayoutRanks {
		return nil, errorf(ErrConfig, "numRanks = %d, want 1..%d", numRanks, maxLayoutRanks)
	}
	if numExperts > maxLayoutExperts {
		return nil, errorf(ErrConfig, "numExperts = %d exceeds %d", numExperts, maxLayoutExperts)
	}
	if numExperts <= 0 || numExperts%numRanks != 0 {
		return nil, errorf(ErrConfig, "numExperts = %d, want a positive multiple of numRanks = %d", numExperts, numRanks)
	}
	if numTokens < 0 {
		return nil, errorf(ErrShape, "numTokens = %d is negative", numTokens)
	}
	if err := topk.validate("topk", numTokens, numExperts); err != nil {
		return nil, err
	}
	el := numExperts / numRanks
	nodes := (numRanks + RanksPerNode - 1) / RanksPerNode
	l := &Layout{
		NumTokens: numTokens, NumRanks: numRanks, NumExperts: numExperts,
		PerRank:   make([]int32, numRanks),
		PerNode:   make([]int32, nodes),
		PerExpert: make([]int32, numExperts),
		InRank:    make([]bool, numTokens*numRanks),
	}
	inNode := make([]bool, nodes)
	k := topk.K
	for t := 0; t < numTokens; t++ {
		row := l.InRank[t*numRanks : (t+1)*numRanks]
		clear(inNode)
		for _, e := range topk.Idx[t*k : (t+1)*k] {
			if e < 0 {
				continue
			}
			l.PerExpert[e]++
			r := int(e) / el
			if !row[r] {
				row[r] = true
				l.PerRank[r]++
				if n := r / RanksPerNode; !inNode[n] {
					inNode[n] = true
					l.PerNode[n]++
				}
			}
		}
	}
	return l, nil
}
