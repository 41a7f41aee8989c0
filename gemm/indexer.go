package gemm

import (
	"context"
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// The DeepSeek-V3.2 lightning indexer's logits (DSA's scoring half):
// DeepGEMM's fp8_mqa_logits, fp8_paged_mqa_logits and
// get_paged_mqa_logits_metadata. For query row i and key j,
//
//	logits[i, j] = k_scale[j] · Σ_h weights[i, h] · max(0, Σ_c q[i, h, c] · k[j, c])
//
// with q and k the E4M3 values (q carries no scale: the caller folds q's
// scale, the head-weight scale and the softmax scale into weights), the
// inner products accumulated in float32, ReLU before both scales.

// IndexerBackend computes the indexer logits. It is optional: a Backend
// that implements it too serves MQALogits and PagedMQALogits (gemm/ref and
// gemm/cpu do). Callers use the front functions, which validate the
// arguments once; a backend receives well-formed arguments and never
// re-validates them. Results never depend on in.ScheduleMeta.
type IndexerBackend interface {
	// MQALogits writes logits [SeqLen, SeqLenKV] for a validated in: row i
	// gets column j in [max(KS[i],0), min(KE[i],SeqLenKV)) computed, and
	// every other column −Inf when cleanLogits, untouched otherwise.
	MQALogits(ctx context.Context, in *MQALogitsInput, logits []float32, cleanLogits bool) error
	// PagedMQALogits writes logits [B·NextN, MaxContextLen] for a validated
	// in: row b·NextN+t gets columns j < in.Visible(b, t) computed, and
	// every other column −Inf when cleanLogits, untouched otherwise.
	PagedMQALogits(ctx context.Context, in *PagedMQALogitsInput, logits []float32, cleanLogits bool) error
}

// MQALogitsInput holds the arguments of DeepGEMM's fp8_mqa_logits (the
// prefill form, one key range per query row), in host memory.
type MQALogitsInput struct {
	// Q is q [SeqLen, Heads, HeadDim], E4M3 codes with no scale.
	Q []tensor.E4M3
	// SeqLen (M), Heads (H) and HeadDim (d) are q's dimensions. Upstream
	// runs H ∈ {32, 64} and d ∈ {32, 64, 128}; any H, d ≥ 1 is accepted.
	SeqLen, Heads, HeadDim int
	// K is kv[0], [SeqLenKV, HeadDim] E4M3 codes; KScales is kv[1], one
	// float32 scale per key row (the per-token scale of
	// per_custom_dims_cast_to_fp8, or the V3.2 demo's UE8M0 scale).
	K       []tensor.E4M3
	KScales []float32
	// SeqLenKV (N) is the number of key rows.
	SeqLenKV int
	// Weights is weights [SeqLen, Heads] float32: every scalar of the
	// score (q's scale, 1/√H, 1/√d in the V3.2 model).
	Weights []float32
	// KS and KE are cu_seq_len_k_start and cu_seq_len_k_end [SeqLen]:
	// row i scores the keys j with KS[i] ≤ j < KE[i], clipped to
	// [0, SeqLenKV) as upstream's reference mask does (KS[i] ≥ KE[i] is an
	// empty row). Causal prefill: KS[i] = 0, KE[i] = i+1.
	KS, KE []int32
}

// Range returns row i's clipped key range [lo, hi) (lo ≥ hi: empty).
func (in *MQALogitsInput) Range(i int) (lo, hi int) {
	lo = min(max(int(in.KS[i]), 0), in.SeqLenKV)
	hi = min(max(int(in.KE[i]), 0), in.SeqLenKV)
	return lo, max(lo, hi)
}

// PagedMQALogitsInput holds the arguments of DeepGEMM's
// fp8_paged_mqa_logits (the decode form over the paged indexer cache), in
// host memory.
type PagedMQALogitsInput struct {
	// Q is q [B, NextN, Heads, HeadDim], E4M3 codes with no scale;
	// HeadDim is Cache.HeadDim.
	Q []tensor.E4M3
	// B is the batch size, NextN the query tokens per request (1, or 2 with
	// MTP; any NextN ≥ 1 is accepted), Heads the indexer heads.
	B, NextN, Heads int
	// Cache is fused_kv_cache [num_blocks, block_kv, 1, HeadDim+4].
	Cache *IndexerCache
	// Weights is weights [B·NextN, Heads] float32.
	Weights []float32
	// ContextLens is context_lens: [B] when ContextLens2D is false (the
	// release form: row (b, t) sees keys j ≤ ContextLens[b] − NextN + t,
	// causal over the NextN new tokens), [B, NextN] when it is true (the
	// current form: row (b, t) sees keys j < ContextLens[b·NextN+t]).
	ContextLens   []int32
	ContextLens2D bool
	// BlockTable is block_table [B, MaxBlocks] int32: logical block
	// pos/BlockKV of request b is physical block BlockTable[b·MaxBlocks +
	// pos/BlockKV]. Only the entries of blocks holding visible keys are
	// read (and must lie in [0, num_blocks)); the rest may hold anything.
	BlockTable []int32
	MaxBlocks  int
	// MaxContextLen is max_context_len, the width of the logits rows; every
	// visible range must fit in it.
	MaxContextLen int
	// ScheduleMeta is the optional schedule_meta from
	// PagedMQALogitsMetadata ([num_sms+1, 2]); nil for none. Host backends
	// ignore it; only its length is checked.
	ScheduleMeta []int32
}

// Visible returns the number of keys row (b, t) scores: positions
// [0, Visible(b, t)) of request b (see ContextLens), never negative.
func (in *PagedMQALogitsInput) Visible(b, t int) int {
	var n int
	if in.ContextLens2D {
		n = int(in.ContextLens[b*in.NextN+t])
	} else {
		n = int(in.ContextLens[b]) - in.NextN + t + 1
	}
	return max(n, 0)
}

// MaxVisible returns the largest Visible(b, t) over t: the keys of request
// b any of its rows reads.
func (in *PagedMQALogitsInput) MaxVisible(b int) int {
	n := 0
	for t := 0; t < in.NextN; t++ {
		n = max(n, in.Visible(b, t))
	}
	return n
}

func indexerBackend(be Backend) (IndexerBackend, error) {
	if err := nilBackend(be); err != nil {
		return nil, err
	}
	ib, ok := be.(IndexerBackend)
	if !ok {
		return nil, argErr("be", ErrUnsupported, "%s has no indexer (MQA logits) kernels", be.Name())
	}
	return ib, nil
}

// MQALogits computes the indexer logits of in into logits [SeqLen,
// SeqLenKV] (row-major float32) on be: the front of DeepGEMM's
// fp8_mqa_logits(q, (k, k_scales), weights, ks, ke, clean_logits). With
// cleanLogits (upstream's default) every column outside row i's range is
// exactly −Inf; without it those columns are left as they were. E4M3 NaN
// codes (0x7F, 0xFF) in q or k make the logits they touch unspecified
// (NaN on gemm/ref). It validates in once (ValidateMQALogits). Errors: *ArgError wrapping
// ErrShape for bad dimensions or slice lengths, ErrUnsupported when be
// lacks IndexerBackend (or is nil), ctx's error when it is cancelled.
func MQALogits(ctx context.Context, be Backend, in *MQALogitsInput, logits []float32, cleanLogits bool) error {
	ib, err := indexerBackend(be)
	if err != nil {
		return err
	}
	if err := ValidateMQALogits(in, logits); err != nil {
		return err
	}
	if in.SeqLen == 0 || in.SeqLenKV == 0 {
		return ctx.Err()
	}
	return ib.MQALogits(ctx, in, logits, cleanLogits)
}

// PagedMQALogits computes the indexer logits of in into logits
// [B·NextN, MaxContextLen] (row-major float32) on be: the front of
// DeepGEMM's fp8_paged_mqa_logits(q, fused_kv_cache, weights,
// context_lens, block_table, schedule_meta, max_context_len,
// clean_logits). Row b·NextN+t scores keys [0, in.Visible(b, t)) of
// request b, read through the block table. With cleanLogits every other
// column is exactly −Inf (upstream accepts it with 1-D context_lens only;
// here both forms); without it they are left as they were. Errors:
// *ArgError wrapping ErrShape for bad dimensions, lengths or context
// lengths, ErrIndices for a block-table entry outside the cache,
// ErrUnsupported when be lacks IndexerBackend, ctx's error.
func PagedMQALogits(ctx context.Context, be Backend, in *PagedMQALogitsInput, logits []float32, cleanLogits bool) error {
	ib, err := indexerBackend(be)
	if err != nil {
		return err
	}
	if err := ValidatePagedMQALogits(in, logits); err != nil {
		return err
	}
	if in.B == 0 || in.MaxContextLen == 0 {
		return ctx.Err()
	}
	return ib.PagedMQALogits(ctx, in, logits, cleanLogits)
}

// ValidateMQALogits checks in and logits for MQALogits. Errors: *ArgError
// wrapping ErrShape naming the argument ("q", "k_scales", "ks", ...).
func ValidateMQALogits(in *MQALogitsInput, logits []float32) error {
	if in == nil {
		return argErr("in", ErrShape, "nil input")
	}
	if in.SeqLen < 0 || in.SeqLenKV < 0 {
		return argErr("seq_len", ErrShape, "negative seq_len %d or seq_len_kv %d", in.SeqLen, in.SeqLenKV)
	}
	if in.Heads < 1 || in.HeadDim < 1 {
		return argErr("q", ErrShape, "heads %d, head_dim %d: want ≥ 1", in.Heads, in.HeadDim)
	}
	if !mulOK(in.SeqLen, in.Heads) || !mulOK(in.SeqLen*in.Heads, in.HeadDim) || !mulOK(in.SeqLenKV, in.HeadDim) || !mulOK(in.SeqLen, in.SeqLenKV) {
		return argErr("q", ErrShape, "dimensions too large")
	}
	if err := wantLen("q", len(in.Q), in.SeqLen*in.Heads*in.HeadDim, "[seq_len %d, heads %d, head_dim %d]", in.SeqLen, in.Heads, in.HeadDim); err != nil {
		return err
	}
	if err := wantLen("k", len(in.K), in.SeqLenKV*in.HeadDim, "[seq_len_kv %d, head_dim %d]", in.SeqLenKV, in.HeadDim); err != nil {
		return err
	}
	if err := wantLen("k_scales", len(in.KScales), in.SeqLenKV, "[seq_len_kv %d]", in.SeqLenKV); err != nil {
		return err
	}
	if err := wantLen("weights", len(in.Weights), in.SeqLen*in.Heads, "[seq_len %d, heads %d]", in.SeqLen, in.Heads); err != nil {
		return err
	}
	if err := wantLen("ks", len(in.KS), in.SeqLen, "[seq_len %d]", in.SeqLen); err != nil {
		return err
	}
	if err := wantLen("ke", len(in.KE), in.SeqLen, "[seq_len %d]", in.SeqLen); err != nil {
		return err
	}
	return wantLen("logits", len(logits), in.SeqLen*in.SeqLenKV, "[seq_len %d, seq_len_kv %d]", in.SeqLen, in.SeqLenKV)
}

// ValidatePagedMQALogits checks in and logits for PagedMQALogits.
// Errors: *ArgError wrapping ErrShape ("q", "context_lens[3]", ...) or
// ErrIndices ("block_table[1,4]") naming the argument.
func ValidatePagedMQALogits(in *PagedMQALogitsInput, logits []float32) error {
	if in == nil {
		return argErr("in", ErrShape, "nil input")
	}
	if err := in.Cache.Check(); err != nil {
		return err
	}
	c := in.Cache
	if in.B < 0 || in.NextN < 1 || in.Heads < 1 {
		return argErr("q", ErrShape, "batch %d, next_n %d, heads %d: want batch ≥ 0, next_n ≥ 1, heads ≥ 1", in.B, in.NextN, in.Heads)
	}
	if in.MaxBlocks < 0 || in.MaxContextLen < 0 {
		return argErr("max_context_len", ErrShape, "negative max_context_len %d or block_table width %d", in.MaxContextLen, in.MaxBlocks)
	}
	rows := in.B * in.NextN
	if !mulOK(in.B, in.NextN) || !mulOK(rows, in.Heads) || !mulOK(rows*in.Heads, c.HeadDim) || !mulOK(rows, in.MaxContextLen) || !mulOK(in.B, in.MaxBlocks) {
		return argErr("q", ErrShape, "dimensions too large")
	}
	if err := wantLen("q", len(in.Q), rows*in.Heads*c.HeadDim, "[batch %d, next_n %d, heads %d, head_dim %d]", in.B, in.NextN, in.Heads, c.HeadDim); err != nil {
		return err
	}
	if err := wantLen("weights", len(in.Weights), rows*in.Heads, "[batch·next_n %d, heads %d]", rows, in.Heads); err != nil {
		return err
	}
	if in.ContextLens2D {
		if err := wantLen("context_lens", len(in.ContextLens), rows, "[batch %d, next_n %d]", in.B, in.NextN); err != nil {
			return err
		}
	} else if err := wantLen("context_lens", len(in.ContextLens), in.B, "[batch %d]", in.B); err != nil {
		return err
	}
	if err := wantLen("block_table", len(in.BlockTable), in.B*in.MaxBlocks, "[batch %d, max_blocks %d]", in.B, in.MaxBlocks); err != nil {
		return err
	}
	if in.ScheduleMeta != nil && (len(in.ScheduleMeta) < 4 || len(in.ScheduleMeta)%2 != 0) {
		return argErr("schedule_meta", ErrShape, "%d entries, want [num_sms+1, 2] with num_sms ≥ 1", len(in.ScheduleMeta))
	}
	if err := wantLen("logits", len(logits), rows*in.MaxContextLen, "[batch·next_n %d, max_context_len %d]", rows, in.MaxContextLen); err != nil {
		return err
	}
	for i, n := range in.ContextLens {
		if n < 0 || int(n) > in.MaxContextLen {
			return argErr(indexArg("context_lens", i), ErrShape, "%d outside [0, max_context_len %d]", n, in.MaxContextLen)
		}
	}
	for b := 0; b < in.B; b++ {
		nb := (in.MaxVisible(b) + c.BlockKV - 1) / c.BlockKV
		if nb > in.MaxBlocks {
			return argErr(indexArg("context_lens", b), ErrShape, "%d visible keys need %d blocks of %d, block_table has %d", in.MaxVisible(b), nb, c.BlockKV, in.MaxBlocks)
		}
		for p := 0; p < nb; p++ {
			if v := in.BlockTable[b*in.MaxBlocks+p]; v < 0 || int(v) >= c.NumBlocks {
				return argErr(indexArg("block_table", b, p), ErrIndices, "block %d outside [0, num_blocks %d)", v, c.NumBlocks)
			}
		}
	}
	return nil
}

func wantLen(arg string, got, want int, format string, args ...any) error {
	if got != want {
		return argErr(arg, ErrShape, "%d elements, want "+format+" = %d", append(append([]any{got}, args...), want)...)
	}
	return nil
}

// PagedMQALogitsMetadata returns the schedule_meta [numSMs+1, 2] int32
// (row-major) of DeepGEMM's get_paged_mqa_logits_metadata(context_lens,
// block_kv, num_sms): every request b is cut into ⌈n_b/(4·blockKV)⌉
// key segments (n_b = contextLens[b], or for 2-D context lens, [B, nextN]
// flattened with nextN > 0, the last of its row), the segments of all
// requests are dealt out evenly over the numSMs SMs in order, and row s is
// (request, segment) where SM s starts; the last row is (B, 0). It is GPU
// work distribution only: the host backends accept and ignore it, and no
// result depends on it. nextN = 0 means 1-D context lens. Errors: *ArgError
// wrapping ErrShape for numSMs < 1, blockKV < 1, a negative length or a
// length not divisible by nextN.
func PagedMQALogitsMetadata(contextLens []int32, nextN, blockKV, numSMs int) ([]int32, error) {
	if numSMs < 1 || numSMs > 1<<20 {
		return nil, argErr("num_sms", ErrShape, "%d, want 1 … 2^20", numSMs)
	}
	if blockKV < 1 {
		return nil, argErr("block_kv", ErrShape, "%d, want ≥ 1", blockKV)
	}
	stride := 1
	if nextN > 0 {
		stride = nextN
	} else if nextN < 0 {
		return nil, argErr("next_n", ErrShape, "%d, want ≥ 0", nextN)
	}
	if len(contextLens)%stride != 0 {
		return nil, argErr("context_lens", ErrShape, "%d entries, not [batch, next_n %d]", len(contextLens), nextN)
	}
	b := len(contextLens) / stride
	split := 4 * blockKV
	segs := make([]int64, b)
	var total int64
	for i := range b {
		n := contextLens[i*stride+stride-1]
		if n < 0 {
			return nil, argErr(indexArg("context_lens", i*stride+stride-1), ErrShape, "negative length %d", n)
		}
		segs[i] = (int64(n) + int64(split) - 1) / int64(split)
		total += segs[i]
	}
	meta := make([]int32, 2*(numSMs+1))
	per, rem := total/int64(numSMs), total%int64(numSMs)
	var start int64 // first segment of SM s in the global order
	q, qStart := 0, int64(0)
	for s := 0; s < numSMs; s++ {
		for q < b && qStart+segs[q] <= start {
			qStart += segs[q]
			q++
		}
		if q < b {
			meta[2*s], meta[2*s+1] = int32(q), int32(start-qStart)
		} else {
			meta[2*s] = int32(b)
		}
		start += per
		if int64(s) < rem {
			start++
		}
	}
	meta[2*numSMs] = int32(b)
	return meta, nil
}

// NegInf is the float32 −Inf that cleaned logits hold outside the valid
// ranges.
var NegInf = float32(math.Inf(-1))
