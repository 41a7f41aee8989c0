package mla

// The tile scheduler: FlashMLA's get_mla_metadata (csrc/kernels/
// get_mla_metadata.cu, commits 414a2f3..1408756) as plain data, so that a
// CUDA backend and the Go backends share one schedule.

const (
	// BlockN is the scheduler's block, in tokens: upstream's kBlockN (64).
	// Splits begin and end on multiples of BlockN tokens whatever the page
	// size.
	BlockN = 64
	// FixedOverheadBlocks is upstream's fixed_overhead_num_blocks: the cost
	// of a request (or of a split of one) in blocks, on top of its KV blocks.
	FixedOverheadBlocks = 5
	// BlockM is upstream's block_size_m: query rows (s_q·h_q/h_kv) one
	// thread block handles.
	BlockM = 64
	// H800SMs is the SM count of the H800 SXM5 that FlashMLA is tuned on.
	// DefaultNumParts plans with NumSMParts(H800SMs, ...) only for a backend
	// that does not choose its own part count (PartsAdvisor); the Go
	// backends ref and cpu do, from GOMAXPROCS (NumSMParts(4·GOMAXPROCS,
	// ...)). Pass Options.NumParts = NumSMParts(H800SMs, s_q, h_q, h_kv) to
	// get the schedule the upstream kernel would use on an H800.
	H800SMs = 132
)

// Part is one row of upstream's tile_scheduler_metadata (TileSchedulerMetaData:
// begin_idx, begin_seqlen, end_idx, end_seqlen, begin_n_split_idx): a
// contiguous stretch of work from token BeginSeqlen of request BeginReq to
// token EndSeqlen (exclusive) of request EndReq (inclusive). Requests
// strictly between them are covered whole. The first request's piece is
// split number BeginSplit of that request; every later request's piece is its
// split 0. A part with BeginReq > EndReq is empty.
type Part struct {
	BeginReq    int32 `json:"begin_req"`
	BeginSeqlen int32 `json:"begin_seqlen"`
	EndReq      int32 `json:"end_req"`
	EndSeqlen   int32 `json:"end_seqlen"`
	BeginSplit  int32 `json:"begin_split"`
}

// Schedule is the output of Plan: how the KV tokens of a batch are cut into
// NumParts parts (one per SM, or per goroutine task, upstream: one CTA each)
// and per-request splits. Request i owns split slots NumSplits[i] ..
// NumSplits[i+1]-1 (an exclusive prefix sum, upstream's num_splits [b+1]).
// A request with one split needs no combine. Cacheseqlens records the lengths
// the schedule was planned for; a schedule is valid only for those.
type Schedule struct {
	NumParts     int
	Parts        []Part  // [NumParts]
	NumSplits    []int32 // [b+1]
	CacheSeqlens []int32 // [b], copy of the planned lengths
}

// Piece is one (request, split) unit of work: tokens [Begin, End) of request
// Req, to be written to split slot Slot (global, NumSplits[Req]+split).
type Piece struct {
	Req   int `json:"req"`
	Begin int `json:"begin"`
	End   int `json:"end"`
	Slot  int `json:"slot"`
}

// NumSMParts returns upstream's num_sm_parts for numSMs streaming
// multiprocessors: max(numSMs / h_kv / ceil(s_q·h_q/h_kv / BlockM), 1).
// It returns 1 for non-positive arguments.
func NumSMParts(numSMs, sq, hq, hkv int) int {
	if numSMs <= 0 || sq <= 0 || hq <= 0 || hkv <= 0 {
		return 1
	}
	rows := sq * hq / hkv
	tiles := max((rows+BlockM-1)/BlockM, 1)
	return max(numSMs/hkv/tiles, 1)
}

// Plan partitions the batch described by cacheSeqlens [b] into numParts
// parts with upstream's greedy rule (get_mla_metadata_kernel): request i
// costs ceil(L_i/BlockN) + FixedOverheadBlocks blocks; every part gets a
// payload of max(ceil(Σcost/numParts) + FixedOverheadBlocks,
// 2·FixedOverheadBlocks); parts take requests whole, in order, while they fit,
// and otherwise take remaining_payload − FixedOverheadBlocks blocks of the
// next request (which then continues as its next split in the next part).
//
// It returns an *ArgError wrapping ErrShape for an empty batch or
// numParts < 1, and ErrSeqlen for a negative length.
func Plan(cacheSeqlens []int32, numParts int) (*Schedule, error) {
	b := len(cacheSeqlens)
	if b == 0 {
		return nil, argErr("cache_seqlens", ErrShape, "empty batch")
	}
	if numParts < 1 {
		return nil, argErr("num_sm_parts", ErrShape, "%d parts, want ≥ 1", numParts)
	}
	if numParts > 1<<20 {
		return nil, argErr("num_sm_parts", ErrShape, "%d parts, want ≤ %d", numParts, 1<<20)
	}
	blocks := make([]int, b)
	total := 0
	for i, l := range cacheSeqlens {
		if l < 0 {
			return nil, argErr("cache_seqlens", ErrSeqlen, "cache_seqlens[%d] = %d is negative", i, l)
		}
		blocks[i] = (int(l) + BlockN - 1) / BlockN
		total += blocks[i] + FixedOverheadBlocks
	}
	payload := max((total+numParts-1)/numParts+FixedOverheadBlocks, 2*FixedOverheadBlocks)

	s := &Schedule{
		NumParts:     numParts,
		Parts:        make([]Part, numParts),
		NumSplits:    make([]int32, b+1),
		CacheSeqlens: append([]int32(nil), cacheSeqlens...),
	}
	nowIdx, nowBlock, nowSplit, cum := 0, 0, 0, 0
	for p := range s.Parts {
		part := Part{BeginReq: int32(nowIdx), BeginSeqlen: int32(nowBlock * BlockN), BeginSplit: int32(nowSplit)}
		remain := payload
		for nowIdx < b {
			left := blocks[nowIdx] - nowBlock
			if remain >= left+FixedOverheadBlocks {
				cum += nowSplit + 1
				s.NumSplits[nowIdx+1] = int32(cum)
				remain -= left + FixedOverheadBlocks
				nowIdx++
				nowBlock, nowSplit = 0, 0
				continue
			}
			if remain-FixedOverheadBlocks > 0 {
				nowBlock += remain - FixedOverheadBlocks
				nowSplit++
			}
			break
		}
		if nowBlock > 0 {
			part.EndReq, part.EndSeqlen = int32(nowIdx), int32(nowBlock*BlockN)
		} else {
			part.EndReq = int32(nowIdx - 1)
			if nowIdx > 0 {
				part.EndSeqlen = cacheSeqlens[nowIdx-1]
			}
		}
		s.Parts[p] = part
	}
	if nowIdx != b || nowBlock != 0 || nowSplit != 0 {
		// Unreachable: the payload covers Σcost/numParts per part.
		return nil, argErr("num_sm_parts", ErrShape, "schedule did not cover the batch (request %d, block %d)", nowIdx, nowBlock)
	}
	return s, nil
}

// TotalSplits returns the number of split slots, NumSplits[b].
func (s *Schedule) TotalSplits() int { return int(s.NumSplits[len(s.NumSplits)-1]) }

// Metadata returns the schedule in upstream's tile_scheduler_metadata layout,
// [NumParts][8]int32 rows of (begin_idx, begin_seqlen, end_idx, end_seqlen,
// begin_n_split_idx, 0, 0, 0), for a CUDA backend.
func (s *Schedule) Metadata() [][8]int32 {
	m := make([][8]int32, len(s.Parts))
	for i, p := range s.Parts {
		m[i] = [8]int32{p.BeginReq, p.BeginSeqlen, p.EndReq, p.EndSeqlen, p.BeginSplit}
	}
	return m
}

// Pieces lists the schedule's work units in part order, as the upstream
// kernel walks them: for each part, each request it touches with the token
// range it covers there (clamped to the request's length) and the split slot
// the result goes to. Every token of every request is in exactly one piece,
// and every request, even one of length 0, has at least one piece.
func (s *Schedule) Pieces() []Piece {
	var out []Piece
	for _, p := range s.Parts {
		for r := p.BeginReq; r <= p.EndReq; r++ {
			begin, end, split := 0, int(s.CacheSeqlens[r]), 0
			if r == p.BeginReq {
				begin, split = int(p.BeginSeqlen), int(p.BeginSplit)
			}
			if r == p.EndReq {
				end = min(end, int(p.EndSeqlen))
			}
			out = append(out, Piece{Req: int(r), Begin: begin, End: max(end, begin), Slot: int(s.NumSplits[r]) + split})
		}
	}
	return out
}

// check verifies that s is the schedule Plan makes for cacheSeqlens with
// s.NumParts parts (a schedule is plain data a caller may have kept; one
// planned for other lengths, or edited, is refused rather than trusted).
func (s *Schedule) check(cacheSeqlens []int32) error {
	if len(s.CacheSeqlens) != len(cacheSeqlens) {
		return argErr("tile_scheduler_metadata", ErrShape, "schedule is for %d requests, batch has %d", len(s.CacheSeqlens), len(cacheSeqlens))
	}
	for i, l := range cacheSeqlens {
		if s.CacheSeqlens[i] != l {
			return argErr("tile_scheduler_metadata", ErrShape, "schedule planned for cache_seqlens[%d] = %d, got %d", i, s.CacheSeqlens[i], l)
		}
	}
	want, err := Plan(cacheSeqlens, s.NumParts)
	if err != nil {
		return err
	}
	if len(want.Parts) != len(s.Parts) || len(want.NumSplits) != len(s.NumSplits) {
		return argErr("tile_scheduler_metadata", ErrShape, "schedule does not match Plan(cache_seqlens, %d)", s.NumParts)
	}
	for i := range want.Parts {
		if want.Parts[i] != s.Parts[i] {
			return argErr("tile_scheduler_metadata", ErrShape, "part %d differs from Plan(cache_seqlens, %d)", i, s.NumParts)
		}
	}
	for i := range want.NumSplits {
		if want.NumSplits[i] != s.NumSplits[i] {
			return argErr("num_splits", ErrShape, "num_splits[%d] differs from Plan(cache_seqlens, %d)", i, s.NumParts)
		}
	}
	return nil
}
