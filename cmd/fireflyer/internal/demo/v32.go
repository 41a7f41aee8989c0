package demo

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/gemm"
	gemmref "github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/par"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

// DeepSeek-V3.2's attention half (--model v3.2): the projections feed the
// lightning indexer, whose logits over the FP8 indexer cache choose each
// token's top-k keys, which sparse MLA reads from the FP8 KV cache.

// IndexerThreshold is the calc_diff the indexer's logits must stay under
// against the float64 reference (over every token and key). The fast path
// quantizes the activations per token before wq_b and wk and then q and k
// to FP8, so correct runs show 1.8e-3 … 3.1e-3 at --scale 8 (seeds 1 … 3)
// and 1e-3 … 4.6e-3 with the single index head of --scale 64; a sign error
// in the head weights gives about 2.
const IndexerThreshold = 0.01

// TopKBand is the near-tie band of the top-k check, relative to the row's
// largest Cauchy–Schwarz bound k_scale·Σ_h |w_h|·‖q_h‖·‖k‖ (the scale of the
// error FP8 rounding of q and k gives a logit, dsv3.IndexerScores64): a key
// whose float64 logit is within the band of the k-th largest may fall on
// either side of the cut. Correct runs move logits by up to 0.018 of that
// bound (0.008 at --scale 8). A key chosen below the band, or left out
// above it, fails the check.
const TopKBand = 0.05

// IndexerCheck is the check of DeepSeek-V3.2's indexer and top-k.
type IndexerCheck struct {
	Heads     int     `json:"index_n_heads"`
	HeadDim   int     `json:"index_head_dim"`
	TopK      int     `json:"index_topk"`
	CalcDiff  float64 `json:"calc_diff"` // the step's indexer logits vs float64, every token's every key
	Threshold float64 `json:"threshold"`
	// Mismatch counts tokens whose chosen keys differ from TopK redone on
	// the step's own logits (0 unless the top-k stage is wrong).
	Mismatch int `json:"topk_mismatch"`
	// Agreement counts tokens whose chosen keys are exactly the float64
	// logits' top-k (near ties may flip).
	Agreement int `json:"topk_agreement"`
	// Outside counts keys chosen although float64 ranks them below the
	// k-th largest logit by more than TopKBand, plus keys left out although
	// above it by more (0 unless the indexer is wrong).
	Outside int `json:"topk_outside"`
	// Sparse counts tokens whose context is longer than TopK (the others
	// attend to every key, −1 padding the rest).
	Sparse     int `json:"sparse_tokens"`
	MaxContext int `json:"max_context"`
}

// OK reports CalcDiff < Threshold (false for NaN), Mismatch 0 and Outside 0.
func (c *IndexerCheck) OK() bool {
	return c.CalcDiff < c.Threshold && c.Mismatch == 0 && c.Outside == 0
}

// Row names of the V3.2 stages.
const (
	rowIndexerProj   = "indexer: q/k projections (FP8), Hadamard, act_quant"
	rowIndexerLogits = "indexer: logits over the FP8 indexer cache (paged)"
	rowTopK          = "indexer: top-k → FlashMLA indices"
	rowSparse        = "attention: sparse MLA decode (FP8 cache, top-k)"
	rowCacheV32      = "kv cache: fill prefixes (FP8 kv_a_proj + indexer wk)"
)

// isV32 reports whether the options run DeepSeek-V3.2 (after configure has
// resolved Model).
func isV32(o *Options) bool { return o.Model == "v3.2" }

// v32Rows returns a rows function giving names for V3.2 and none for V3.
func v32Rows(names ...string) func(*Options) []string {
	return func(o *Options) []string {
		if isV32(o) {
			return names
		}
		return nil
	}
}

func cacheRows(o *Options) []string {
	if isV32(o) {
		return []string{rowCacheV32}
	}
	return []string{rowCache}
}

func attentionRows(o *Options) []string {
	if isV32(o) {
		return []string{rowProj, rowIndexerProj}
	}
	return []string{rowProj, rowDecode, rowOProj}
}

// projectV32 runs MLA's projections (writing the new tokens' FP8 cache
// rows) and the indexer's (queries, weights and the new tokens' keys into
// the indexer cache), then counts the new tokens in.
func projectV32(ctx context.Context, s *state) (int64, int64, error) {
	cfg, B := s.cfg, s.opts.Batch
	var flops int64
	t := time.Now()
	pr, err := dsv3.Project(ctx, s.be, cfg, s.w, s.kvb, s.x, s.cache, s.bt, s.seqlens, &flops)
	if err != nil {
		return 0, 0, err
	}
	d := time.Since(t)
	s.fwd += d
	if err := s.row(rowProj, d, flops, 0); err != nil {
		return 0, 0, err
	}
	s.pr = pr
	flops = 0
	t = time.Now()
	pos := func(i int) int { return int(s.seqlens[i]) }
	ps := s.opts.PageSize
	if s.iq, s.iw, err = dsv3.IndexerQueries(ctx, s.be, cfg, s.w.Indexer, pr.QR, pr.H, B, pos, &flops); err != nil {
		return 0, 0, err
	}
	err = dsv3.IndexerKeys(ctx, s.be, cfg, s.w.Indexer, pr.HQ, pos, s.icache,
		func(i int) (int, int) { p := int(s.seqlens[i]); return int(s.bt[i][p/ps]), p % ps }, &flops)
	if err != nil {
		return 0, 0, err
	}
	d = time.Since(t)
	s.fwd += d
	for b := range s.seqlens {
		s.seqlens[b]++
	}
	return 0, 0, s.row(rowIndexerProj, d, flops, 0)
}

// indexerStage computes the indexer's logits of every token over its
// context in the indexer cache.
func indexerStage(ctx context.Context, s *state) (int64, int64, error) {
	if !s.cfg.IsV32() {
		return 0, 0, nil
	}
	t := time.Now()
	s.maxLen = 0
	var keys int64
	for _, l := range s.seqlens {
		s.maxLen = max(s.maxLen, int(l))
		keys += int64(l)
	}
	lg, flops, err := dsv3.IndexerLogits(ctx, indexerBackend(s.be), s.iq, s.iw, s.opts.Batch, s.cfg.IndexNHeads, s.icache, s.bt, s.seqlens, s.maxLen)
	if err != nil {
		return 0, 0, err
	}
	s.ilogits = lg
	s.fwd += time.Since(t)
	return flops, keys * int64(s.cfg.IndexHeadDim+4), nil
}

// topkStage takes every token's top index_topk keys and turns their
// positions into cache token indices through the block table.
func topkStage(_ context.Context, s *state) (int64, int64, error) {
	if !s.cfg.IsV32() {
		return 0, 0, nil
	}
	t := time.Now()
	B, k, ps := s.opts.Batch, s.cfg.IndexTopK, s.opts.PageSize
	s.sel = make([]int32, B*k)
	s.sparseIx = make([]int32, B*k)
	if err := mla.TopKIndices(s.sel, s.ilogits, B, s.maxLen, k, s.seqlens); err != nil {
		return 0, 0, err
	}
	for b := 0; b < B; b++ {
		row := s.sel[b*k : (b+1)*k]
		for i, p := range row {
			s.sparseIx[b*k+i] = -1
			if p >= 0 {
				s.sparseIx[b*k+i] = s.bt[b][int(p)/ps]*int32(ps) + p%int32(ps)
			}
		}
	}
	s.fwd += time.Since(t)
	return 0, 0, nil
}

// sparseStage runs FlashMLA's sparse decode over the FP8 cache with the
// chosen indices, then the un-absorption and o_proj.
func sparseStage(ctx context.Context, s *state) (int64, int64, error) {
	if !s.cfg.IsV32() {
		return 0, 0, nil
	}
	cfg, B, k := s.cfg, s.opts.Batch, s.cfg.IndexTopK
	heads := cfg.NumAttentionHeads
	t := time.Now()
	out, _, err := mla.SparseDecode(ctx, nil, mla.Query{Data: s.pr.Q, B: B, SQ: 1, HQ: heads}, s.cache, s.sparseIx, k,
		&mla.SparseDecodeOptions{Scale: float32(cfg.SoftmaxScale())})
	if err != nil {
		return 0, 0, fmt.Errorf("mla sparse decode: %w", err)
	}
	var used int64
	for _, ix := range s.sparseIx {
		if ix >= 0 {
			used++
		}
	}
	d := time.Since(t)
	s.fwd += d
	if err := s.row(rowSparse, d, 2*int64(heads)*used*int64(mla.HeadDim+mla.HeadDimV), used*mla.FP8BytesPerToken); err != nil {
		return 0, 0, err
	}
	var flops int64
	t = time.Now()
	if s.attn, err = dsv3.OutputProj(ctx, s.be, cfg, s.w, s.kvb, out, B, &flops); err != nil {
		return 0, 0, err
	}
	d = time.Since(t)
	s.fwd += d
	return 0, 0, s.row(rowOProj, d, flops, 0)
}

// referenceKeys computes the float64 reference of every prefix token's
// indexer key (position p of its sequence), on all cores.
func referenceKeys(ctx context.Context, s *state, ref *dsv3.Ref) error {
	hid := s.cfg.HiddenSize
	s.refKeys = make([]dsv3.IndexKey, len(s.xp)/hid)
	pos := make([]int, len(s.refKeys))
	for b, st := range s.xpStart {
		for p := 0; p < int(s.prefix[b]); p++ {
			pos[st+p] = p
		}
	}
	return par.For(ctx, len(s.refKeys), runtime.GOMAXPROCS(0), func() (func(int), func()) {
		return func(r int) { s.refKeys[r] = ref.IndexerKey(s.xp[r*hid:(r+1)*hid], pos[r]) }, func() {}
	})
}

// indexerBackend returns be when it computes the indexer's logits
// (gemm.IndexerBackend), else gemm's ref backend.
func indexerBackend(be gemm.Backend) gemm.Backend {
	if _, ok := be.(gemm.IndexerBackend); ok {
		return be
	}
	return gemmref.New()
}

// referenceIndexer checks token b's indexer logits and top-k against the
// float64 reference, which recomputes every key of the context from the
// prefix tokens' hidden states and the token's own.
func referenceIndexer(s *state, ref *dsv3.Ref, b int, ic *IndexerCheck, got, want *[]float64) {
	hid, k := s.cfg.HiddenSize, s.cfg.IndexTopK
	n := int(s.prefix[b])
	keys := s.refKeys[s.xpStart[b] : s.xpStart[b]+n]
	scores, bounds := ref.IndexerScores(s.x[b*hid:(b+1)*hid], keys)
	row := s.ilogits[b*s.maxLen : b*s.maxLen+n+1]
	*got = append(*got, testutil.F64(row)...)
	*want = append(*want, scores...)
	ic.MaxContext = max(ic.MaxContext, n+1)
	if n+1 > k {
		ic.Sparse++
	}
	sel := s.sel[b*k : (b+1)*k]
	// the selection, redone from the step's own logits, must be identical
	redo := make([]int32, k)
	mla.TopKRow(redo, s.ilogits[b*s.maxLen:b*s.maxLen+int(s.seqlens[b])])
	if !slices.Equal(redo, sel) {
		ic.Mismatch++
	}
	// against float64: the same set, up to near ties
	top := dsv3.TopK64(scores, k)
	chosen := make([]bool, n+1)
	for _, p := range sel {
		if p >= 0 && int(p) <= n {
			chosen[p] = true
		}
	}
	same := true
	for _, p := range top {
		same = same && chosen[p]
	}
	if same && len(top) == countChosen(chosen) {
		ic.Agreement++
	}
	if len(top) < k { // every key is chosen
		for _, c := range chosen {
			if !c {
				ic.Outside++
			}
		}
		return
	}
	var bmax float64
	for _, v := range bounds {
		bmax = max(bmax, v)
	}
	kth, band := scores[top[len(top)-1]], TopKBand*bmax
	for p, v := range scores {
		if (chosen[p] && v < kth-band) || (!chosen[p] && v > kth+band) {
			ic.Outside++
		}
	}
}

func countChosen(c []bool) int {
	n := 0
	for _, v := range c {
		if v {
			n++
		}
	}
	return n
}
