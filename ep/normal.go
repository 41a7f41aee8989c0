package ep

const (
	opDispatch uint32 = iota + 1
	opCached
	opCombine
	opLLDispatch
	opLLCombine
)

// DispatchOptions are the optional arguments of Dispatch.
type DispatchOptions struct {
	// Layout is the result of Layout for the same topk; nil computes it.
	Layout *Layout
	// NumExperts E, a multiple of R; required.
	NumExperts int
	// ExpertAlignment rounds each per-expert count up to a multiple of it
	// (expert_alignment); zero means 1; below 2^31 (ErrRange otherwise).
	ExpertAlignment int
	// NumWorstTokens, when > 0, makes the results NumWorstTokens rows long
	// (rows past the real count have TopKIdx −1 and weight 0) and leaves
	// PerExpert empty (num_worst_tokens, upstream's CUDA-graph mode); below
	// 2^31 (ErrRange otherwise).
	NumWorstTokens int
}

// DispatchResult is what a rank receives from a normal dispatch, grouped by
// source rank in ascending order and, within a source, in ascending source
// token order. X, TopKIdx and Weights alias the Buffer's region: they stay
// valid until the next Dispatch or DispatchCached on this Buffer (Clone
// keeps them).
type DispatchResult struct {
	// X [NumRows][Hidden]: the received tokens, in the input's encoding.
	X Tokens
	// TopKIdx [NumRows][K]: local expert ids (global id − rank·E/R), −1 for
	// experts on other ranks; nil for a dispatch without top-k.
	TopKIdx []int32
	// Weights [NumRows][K]: the weights, 0 where TopKIdx is −1; nil when no
	// weights were dispatched.
	Weights []float32
	// PerExpert [E/R]: received (token, local expert) pairs per local expert,
	// each rounded up to ExpertAlignment (num_recv_tokens_per_expert_list);
	// empty with NumWorstTokens.
	PerExpert []int
	// Handle describes the communication for DispatchCached and Combine.
	Handle *Handle
}

// Clone returns a copy of r whose slices do not alias the Buffer's region.
func (r *DispatchResult) Clone() *DispatchResult {
	c := *r
	c.X = r.X.Clone()
	c.TopKIdx = clone(r.TopKIdx)
	c.Weights = clone(r.Weights)
	c.PerExpert = clone(r.PerExpert)
	return &c
}

// Handle records a normal dispatch's communication layout, the Go form of
// upstream's intranode handle tuple (rank_prefix_matrix, recv_src_idx,
// is_token_in_rank, send_head). It belongs to the Buffer that made it.
type Handle struct {
	// Rank is the rank that owns the handle; NumRanks R, NumTokens N (sent
	// by this rank), NumRecv (received, excluding worst-token padding),
	// Hidden H.
	Rank, NumRanks, NumTokens, NumRecv, Hidden int
	// RankPrefix [R][R]: RankPrefix[i][j] is the number of tokens that ranks
	// 0..i send to rank j (inclusive prefix over source ranks). The rows this
	// rank received from source i are [RankPrefix[i−1][Rank], RankPrefix[i][Rank]).
	RankPrefix []int32
	// RecvSrcIdx [NumRecv]: each received row's token index at its source.
	RecvSrcIdx []int32
	// InRank [N][R]: whether this rank's token t went to rank r.
	InRank []bool
	// SendSlot [N][R]: the row of token t within the block this rank sent to
	// rank r, −1 if not sent (upstream's send_head).
	SendSlot []int32
	// PerExpert is the dispatch's aligned per-expert list.
	PerExpert []int

	buf uint64
	seq uint64
}

// RecvRange returns the rows [begin, end) that this rank received from
// source rank src.
func (h *Handle) RecvRange(src int) (begin, end int) {
	r := h.NumRanks
	if src > 0 {
		begin = int(h.RankPrefix[(src-1)*r+h.Rank])
	}
	return begin, int(h.RankPrefix[src*r+h.Rank])
}

// count returns the tokens rank s sent to rank d.
func (h *Handle) count(s, d int) int {
	r := h.NumRanks
	c := int(h.RankPrefix[s*r+d])
	if s > 0 {
		c -= int(h.RankPrefix[(s-1)*r+d])
	}
	return c
}

// SrcRank returns the source rank of received row i.
func (h *Handle) SrcRank(i int) int {
	for s := 0; s < h.NumRanks; s++ {
		if _, e := h.RecvRange(s); i < e {
			return s
		}
	}
	return -1
}
