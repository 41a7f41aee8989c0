package gemmtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// IndexerOptions tunes RunIndexer.
type IndexerOptions struct {
	// MaxMACs skips (by name) cases with more than this many
	// multiply-accumulates (logits·H·d); 0 means no limit.
	MaxMACs int
	// Reruns is how many extra runs must reproduce the first bit for bit
	// (upstream: 20); 0 means 3.
	Reruns int
	// Quick runs only the cases below 2^22 MACs: for extra configurations
	// of a backend once the full suite has run.
	Quick bool
}

// MQALogitsCase is one shape of the fp8_mqa_logits grid.
type MQALogitsCase struct {
	M, N, H, D int
	CP         bool
}

// String returns the sub-test name, "M=…/N=…/H=…/D=…/CP=…".
func (c MQALogitsCase) String() string {
	return fmt.Sprintf("M=%d/N=%d/H=%d/D=%d/CP=%v", c.M, c.N, c.H, c.D, c.CP)
}

// PagedMQALogitsCase is one shape of the fp8_paged_mqa_logits grid.
type PagedMQALogitsCase struct {
	B, NextN, H, D, BlockKV, AvgCtx int
	Ctx2D                           bool
}

// String returns the sub-test name, "B=…/NextN=…/H=…/D=…/block=…/ctx=…/2D=…".
func (c PagedMQALogitsCase) String() string {
	return fmt.Sprintf("B=%d/NextN=%d/H=%d/D=%d/block=%d/ctx=%d/2D=%v", c.B, c.NextN, c.H, c.D, c.BlockKV, c.AvgCtx, c.Ctx2D)
}

// MQALogitsCases returns DeepGEMM's test_mqa_logits grid scaled down to a
// CPU's test time (upstream: H=64, d=128, M ∈ {2048, 4096}, N ∈ {4096,
// 8192}, with and without the CP ranges; the current tests add H=32 and
// d ∈ {32, 64}), plus odd sizes (H=17, d=48, a key tail). long adds
// larger M and N. The cases marked quick are the small ones.
func MQALogitsCases(long bool) []MQALogitsCase {
	cs := []MQALogitsCase{
		{M: 8, N: 192, H: 64, D: 128, CP: false}, {M: 16, N: 128, H: 64, D: 128, CP: true},
		{M: 16, N: 160, H: 32, D: 64, CP: true}, {M: 10, N: 100, H: 32, D: 32, CP: false},
		{M: 7, N: 300, H: 17, D: 48, CP: false}, {M: 1, N: 1, H: 1, D: 1, CP: false},
	}
	if long {
		cs = append(cs, MQALogitsCase{M: 64, N: 256, H: 64, D: 128, CP: true}, MQALogitsCase{M: 128, N: 1024, H: 64, D: 128, CP: false},
			MQALogitsCase{M: 256, N: 2048, H: 64, D: 128, CP: true})
	}
	return cs
}

// PagedMQALogitsCases returns DeepGEMM's test_paged_mqa_logits grid scaled
// down (upstream: (B, next_n) ∈ {(64,1), (64,2), (64,4), (128,1)}, H=64,
// d=128, avg context ∈ {8192, 32768}, block ∈ {32, 64}, 1-D and 2-D context
// lens), plus contexts longer than a CPU key tile at small H·d and an odd
// block size. long runs every (B, next_n, block, 1-D/2-D) combination at
// H=64, d=128 and longer contexts.
func PagedMQALogitsCases(long bool) []PagedMQALogitsCase {
	cs := []PagedMQALogitsCase{
		{B: 4, NextN: 1, H: 64, D: 128, BlockKV: 64, AvgCtx: 100},
		{B: 3, NextN: 2, H: 64, D: 128, BlockKV: 32, AvgCtx: 100},
		{B: 2, NextN: 4, H: 64, D: 128, BlockKV: 64, AvgCtx: 100, Ctx2D: true},
		{B: 3, NextN: 2, H: 64, D: 128, BlockKV: 64, AvgCtx: 100, Ctx2D: true},
		{B: 2, NextN: 2, H: 8, D: 32, BlockKV: 64, AvgCtx: 700},
		{B: 2, NextN: 2, H: 8, D: 32, BlockKV: 32, AvgCtx: 600, Ctx2D: true},
		{B: 2, NextN: 1, H: 17, D: 48, BlockKV: 7, AvgCtx: 40},
		{B: 2, NextN: 2, H: 4, D: 16, BlockKV: 7, AvgCtx: 600, Ctx2D: true}, // key tiles cut blocks
	}
	if !long {
		return cs
	}
	for _, ctx2D := range []bool{false, true} {
		for _, bn := range [][2]int{{8, 1}, {6, 2}, {4, 4}} {
			for _, blk := range []int{32, 64} {
				cs = append(cs, PagedMQALogitsCase{B: bn[0], NextN: bn[1], H: 64, D: 128, BlockKV: blk, AvgCtx: 600, Ctx2D: ctx2D})
			}
		}
	}
	return append(cs, PagedMQALogitsCase{B: 4, NextN: 2, H: 64, D: 128, BlockKV: 64, AvgCtx: 4096})
}

// indexerOracles caches the oracles' logits by case and seed, shared by
// the configurations of a backend run in one test binary.
var indexerOracles sync.Map

type indexerOracle struct{ q, d []float64 }

func cachedIndexerOracle(key string, f func() (q, d []float64)) indexerOracle {
	if v, ok := indexerOracles.Load(key); ok {
		return v.(indexerOracle)
	}
	q, d := f()
	o := indexerOracle{q, d}
	indexerOracles.Store(key, o)
	return o
}

// RunIndexer runs the indexer conformance suite on be (which must
// implement gemm.IndexerBackend): the ported fp8_mqa_logits and
// fp8_paged_mqa_logits grids, each checked against the float64 oracle on
// the unquantized inputs (calc_diff < 1e-3, upstream's gate) and on the
// dequantized inputs (< 5e-6), with −Inf masks equal to the oracle's when
// clean_logits is set, untouched columns when it is not, bit-identical
// reruns, results independent of the schedule metadata, and the
// argument errors.
func RunIndexer(t *testing.T, be gemm.Backend, opt IndexerOptions) {
	if _, ok := be.(gemm.IndexerBackend); !ok {
		t.Skipf("backend %s has no indexer kernels", be.Name())
	}
	reruns := opt.Reruns
	if reruns == 0 {
		reruns = 3
	}
	limit := func(t *testing.T, macs int) {
		t.Helper()
		if opt.Quick && macs > 1<<22 {
			t.Skipf("%d MACs: quick mode", macs)
		}
		if opt.MaxMACs > 0 && macs > opt.MaxMACs {
			t.Skipf("%d MACs above this backend's test limit %d", macs, opt.MaxMACs)
		}
	}
	ctx := context.Background()
	t.Run("MQALogits", func(t *testing.T) {
		for i, c := range MQALogitsCases(long()) {
			t.Run(c.String(), func(t *testing.T) {
				limit(t, c.M*c.N*c.H*c.D)
				cp := c.CP && c.M%2 == 0 && c.N%c.M == 0
				p := oracle.NewMQALogitsProblem(uint64(2000+i), c.M, c.N, c.H, c.D, cp)
				in := p.In
				o := cachedIndexerOracle(fmt.Sprint("mqa/", i, c), func() (q, d []float64) {
					return oracle.MQALogits64(p.QF, p.KF, in.Weights, in.KS, in.KE, c.M, c.N, c.H, c.D),
						oracle.MQALogits64(p.DQ, p.DK, in.Weights, in.KS, in.KE, c.M, c.N, c.H, c.D)
				})
				wantQ, wantD := o.q, o.d
				got := make([]float32, c.M*c.N)
				if err := gemm.MQALogits(ctx, be, in, got, true); err != nil {
					t.Fatal(err)
				}
				checkIndexer(t, got, wantQ, wantD, true)
				for r := 0; r < reruns; r++ {
					again := make([]float32, len(got))
					if err := gemm.MQALogits(ctx, be, in, again, true); err != nil {
						t.Fatal(err)
					}
					if !bitsEqual(got, again) {
						t.Fatalf("rerun %d differs from the first run", r)
					}
				}
				// clean_logits=false: positions outside the ranges keep
				// what they held.
				dirty := make([]float32, len(got))
				for j := range dirty {
					dirty[j] = sentinel
				}
				if err := gemm.MQALogits(ctx, be, in, dirty, false); err != nil {
					t.Fatal(err)
				}
				for j, w := range wantD {
					if math.IsInf(w, -1) && dirty[j] != sentinel {
						t.Fatalf("clean_logits=false: element %d = %v outside its range, want untouched %v", j, dirty[j], float32(sentinel))
					}
					if !math.IsInf(w, -1) && math.Float32bits(dirty[j]) != math.Float32bits(got[j]) {
						t.Fatalf("clean_logits=false: element %d = %v, the cleaned run gave %v", j, dirty[j], got[j])
					}
				}
			})
		}
		t.Run("causal", func(t *testing.T) {
			// The V3.2 prefill ranges: ks = 0, ke[i] = i+1.
			p := oracle.NewMQALogitsProblem(2100, 40, 40, 8, 32, false)
			for i := range p.In.KE {
				p.In.KS[i], p.In.KE[i] = 0, int32(i+1)
			}
			p.In.KS[3], p.In.KE[3] = -5, 100 // clipped to [0, N)
			p.In.KS[4], p.In.KE[4] = 9, 2    // empty
			got := make([]float32, 40*40)
			if err := gemm.MQALogits(ctx, be, p.In, got, true); err != nil {
				t.Fatal(err)
			}
			checkIndexer(t, got, oracle.MQALogits64(p.QF, p.KF, p.In.Weights, p.In.KS, p.In.KE, 40, 40, 8, 32),
				oracle.MQALogits64(p.DQ, p.DK, p.In.Weights, p.In.KS, p.In.KE, 40, 40, 8, 32), true)
		})
	})
	t.Run("PagedMQALogits", func(t *testing.T) {
		for i, c := range PagedMQALogitsCases(long()) {
			t.Run(c.String(), func(t *testing.T) {
				limit(t, c.B*c.NextN*c.AvgCtx*13/10*c.H*c.D)
				p := oracle.NewPagedMQALogitsProblem(uint64(3000+i), c.B, c.NextN, c.H, c.D, c.BlockKV, c.AvgCtx, c.Ctx2D)
				in := p.In
				o := cachedIndexerOracle(fmt.Sprint("paged/", i, c), func() (q, d []float64) {
					return oracle.PagedMQALogits64(in, p.QF, p.KF, c.D), oracle.PagedMQALogits64(in, p.DQ, p.DK, c.D)
				})
				wantQ, wantD := o.q, o.d
				got := make([]float32, c.B*c.NextN*in.MaxContextLen)
				if err := gemm.PagedMQALogits(ctx, be, in, got, true); err != nil {
					t.Fatal(err)
				}
				checkIndexer(t, got, wantQ, wantD, true)
				meta, err := gemm.PagedMQALogitsMetadata(in.ContextLens, map[bool]int{false: 0, true: c.NextN}[c.Ctx2D], c.BlockKV, 132)
				if err != nil {
					t.Fatal(err)
				}
				withMeta := *in
				withMeta.ScheduleMeta = meta
				for r := 0; r < reruns; r++ {
					again := make([]float32, len(got))
					if err := gemm.PagedMQALogits(ctx, be, &withMeta, again, true); err != nil {
						t.Fatal(err)
					}
					if !bitsEqual(got, again) {
						t.Fatalf("rerun %d (with schedule metadata) differs from the first run", r)
					}
				}
				dirty := make([]float32, len(got))
				for j := range dirty {
					dirty[j] = sentinel
				}
				if err := gemm.PagedMQALogits(ctx, be, in, dirty, false); err != nil {
					t.Fatal(err)
				}
				for j, w := range wantD {
					if math.IsInf(w, -1) && dirty[j] != sentinel || !math.IsInf(w, -1) && math.Float32bits(dirty[j]) != math.Float32bits(got[j]) {
						t.Fatalf("clean_logits=false: element %d = %v (cleaned %v, oracle %v)", j, dirty[j], got[j], w)
					}
				}
			})
		}
	})
	t.Run("Errors", func(t *testing.T) { indexerErrors(t, be) })
	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		p := oracle.NewMQALogitsProblem(9, 4, 64, 2, 16, false)
		if err := gemm.MQALogits(cctx, be, p.In, make([]float32, 4*64), true); !errors.Is(err, context.Canceled) {
			t.Errorf("MQALogits: got %v, want context.Canceled", err)
		}
		pp := oracle.NewPagedMQALogitsProblem(9, 2, 1, 2, 16, 8, 40, false)
		if err := gemm.PagedMQALogits(cctx, be, pp.In, make([]float32, 2*pp.In.MaxContextLen), true); !errors.Is(err, context.Canceled) {
			t.Errorf("PagedMQALogits: got %v, want context.Canceled", err)
		}
	})
}

// checkIndexer applies upstream's gates to got against the oracles on the
// unquantized (wantQ) and dequantized (wantD) inputs.
func checkIndexer(t *testing.T, got []float32, wantQ, wantD []float64, mask bool) {
	t.Helper()
	dq, err := oracle.IndexerDiff(got, wantQ, mask)
	if err != nil {
		t.Fatal(err)
	}
	if !(dq < oracle.GateIndexerUnquantized) {
		t.Errorf("calc_diff against the unquantized oracle = %.3g, want < %.0e", dq, oracle.GateIndexerUnquantized)
	}
	dd, err := oracle.IndexerDiff(got, wantD, mask)
	if err != nil {
		t.Fatal(err)
	}
	if !(dd < oracle.GateIndexerDequantized) {
		t.Errorf("calc_diff against the dequantized oracle = %.3g, want < %.0e", dd, oracle.GateIndexerDequantized)
	}
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// indexerErrors checks that bad arguments give *gemm.ArgError wrapping the
// right sentinel and naming the argument.
func indexerErrors(t *testing.T, be gemm.Backend) {
	ctx := context.Background()
	base := func() *gemm.MQALogitsInput {
		return oracle.NewMQALogitsProblem(7, 4, 8, 2, 16, false).In
	}
	type errCase struct {
		name, arg string
		sentinel  error
		run       func() error
	}
	mq := func(mut func(*gemm.MQALogitsInput), nOut int) func() error {
		return func() error {
			in := base()
			mut(in)
			return gemm.MQALogits(ctx, be, in, make([]float32, nOut), true)
		}
	}
	pbase := func() *gemm.PagedMQALogitsInput {
		return oracle.NewPagedMQALogitsProblem(8, 2, 2, 4, 16, 4, 10, false).In
	}
	pq := func(mut func(*gemm.PagedMQALogitsInput)) func() error {
		return func() error {
			in := pbase()
			mut(in)
			return gemm.PagedMQALogits(ctx, be, in, make([]float32, in.B*in.NextN*in.MaxContextLen), true)
		}
	}
	cases := []errCase{
		{"q short", "q", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.Q = in.Q[1:] }, 32)},
		{"k short", "k", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.K = in.K[1:] }, 32)},
		{"k_scales", "k_scales", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.KScales = in.KScales[1:] }, 32)},
		{"weights", "weights", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.Weights = nil }, 32)},
		{"ks", "ks", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.KS = in.KS[:1] }, 32)},
		{"ke", "ke", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.KE = nil }, 32)},
		{"logits", "logits", gemm.ErrShape, mq(func(*gemm.MQALogitsInput) {}, 31)},
		{"heads", "q", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.Heads = 0 }, 32)},
		{"negative", "seq_len", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.SeqLen = -1 }, 32)},
		{"huge", "q", gemm.ErrShape, mq(func(in *gemm.MQALogitsInput) { in.SeqLen, in.Heads = 1<<40, 1<<20 }, 32)},
		{"nil input", "in", gemm.ErrShape, func() error { return gemm.MQALogits(ctx, be, nil, nil, true) }},
		{"nil backend", "be", gemm.ErrUnsupported, func() error { return gemm.MQALogits(ctx, nil, base(), make([]float32, 32), true) }},
		{"paged q", "q", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.Q = in.Q[:3] })},
		{"paged weights", "weights", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.Weights = in.Weights[:3] })},
		{"paged context_lens len", "context_lens", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.ContextLens2D = true })},
		{"paged context_lens value", "context_lens[1]", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.ContextLens[1] = int32(in.MaxContextLen + 1) })},
		{"paged negative length", "context_lens[0]", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.ContextLens[0] = -1 })},
		{"paged block_table len", "block_table", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.BlockTable = in.BlockTable[1:] })},
		{"paged block index", "block_table[0,0]", gemm.ErrIndices, pq(func(in *gemm.PagedMQALogitsInput) { in.BlockTable[0] = int32(in.Cache.NumBlocks) })},
		{"paged negative block", "block_table[1,0]", gemm.ErrIndices, pq(func(in *gemm.PagedMQALogitsInput) { in.BlockTable[in.MaxBlocks] = -1 })},
		{"paged cache", "fused_kv_cache", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { c := *in.Cache; c.Data = c.Data[1:]; in.Cache = &c })},
		{"paged nil cache", "fused_kv_cache", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.Cache = nil })},
		{"paged schedule_meta", "schedule_meta", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.ScheduleMeta = []int32{1, 2, 3} })},
		{"paged next_n", "q", gemm.ErrShape, pq(func(in *gemm.PagedMQALogitsInput) { in.NextN = 0 })},
		{"paged logits", "logits", gemm.ErrShape, func() error {
			in := pbase()
			return gemm.PagedMQALogits(ctx, be, in, make([]float32, 3), true)
		}},
	}
	for _, c := range cases {
		err := c.run()
		var ae *gemm.ArgError
		if !errors.Is(err, c.sentinel) || !errors.As(err, &ae) || ae.Arg != c.arg {
			t.Errorf("%s: got %v, want an *ArgError on %q wrapping %v", c.name, err, c.arg, c.sentinel)
		}
	}
}

// FuzzIndexer fuzzes the argument handling of be's indexer calls: the
// dimensions, slice lengths, ranges, context lengths and block-table
// entries come from the fuzzer's bytes; every call either succeeds (and
// then every valid logit is finite and every cleaned one −Inf) or returns
// an error wrapping a gemm sentinel. It never panics.
func FuzzIndexer(f *testing.F, be gemm.Backend) {
	f.Add([]byte{4, 8, 2, 16, 0, 0, 0, 0, 1, 3, 9, 0})
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		get := func(i int) int {
			if i < len(b) {
				return int(b[i])
			}
			return 0
		}
		ctx := context.Background()
		m, n, h, d := get(0)%9, get(1)%70, get(2)%5, get(3)%40
		delta := get(4)%3 - 1
		in := &gemm.MQALogitsInput{SeqLen: m, SeqLenKV: n, Heads: h, HeadDim: d,
			Q: make([]tensor.E4M3, max(0, m*h*d+delta*(get(5)%2))), K: make([]tensor.E4M3, max(0, n*d+delta*(get(6)%2))),
			KScales: make([]float32, n), Weights: make([]float32, m*h), KS: make([]int32, m), KE: make([]int32, m)}
		for i := range in.Q {
			in.Q[i] = tensor.E4M3(0x30 + i%9)
		}
		for i := range in.K {
			in.K[i] = tensor.E4M3(0xB0 + i%5)
		}
		for i := range in.KScales {
			in.KScales[i] = 0.5
		}
		for i := range in.Weights {
			in.Weights[i] = float32(i%3) - 1
		}
		for i := range in.KS {
			in.KS[i], in.KE[i] = int32(get(7+i%4)-128), int32(get(8+i%3)-64)
		}
		out := make([]float32, max(0, m*n+delta*(get(9)%2)))
		if err := gemm.MQALogits(ctx, be, in, out, true); err != nil {
			if !errors.Is(err, gemm.ErrShape) {
				t.Fatalf("MQALogits: %v does not wrap ErrShape", err)
			}
		} else {
			for i := 0; i < m; i++ {
				lo, hi := in.Range(i)
				for j := 0; j < n; j++ {
					v := out[i*n+j]
					if inside := j >= lo && j < hi; inside == math.IsInf(float64(v), -1) || math.IsNaN(float64(v)) {
						t.Fatalf("logits[%d,%d] = %v with range [%d,%d)", i, j, v, lo, hi)
					}
				}
			}
		}
		// Paged.
		blk := get(10)%9 + 1
		cache, err := gemm.NewIndexerCache(get(11)%6+1, blk, max(d, 1))
		if err != nil {
			t.Fatal(err)
		}
		bsz, nextN := get(5)%4, get(6)%3+1
		pin := &gemm.PagedMQALogitsInput{B: bsz, NextN: nextN, Heads: max(h, 1), Cache: cache,
			Q: make([]tensor.E4M3, bsz*nextN*max(h, 1)*cache.HeadDim), Weights: make([]float32, bsz*nextN*max(h, 1)),
			ContextLens2D: get(7)%2 == 1, MaxBlocks: get(8) % 5, MaxContextLen: get(9) % 40}
		nl := bsz
		if pin.ContextLens2D {
			nl = bsz * nextN
		}
		pin.ContextLens = make([]int32, nl)
		for i := range pin.ContextLens {
			pin.ContextLens[i] = int32(get(i%12) % 45)
		}
		pin.BlockTable = make([]int32, bsz*pin.MaxBlocks)
		for i := range pin.BlockTable {
			pin.BlockTable[i] = int32(get((i+3)%12)%8) - 1
		}
		pout := make([]float32, bsz*nextN*pin.MaxContextLen)
		if err := gemm.PagedMQALogits(ctx, be, pin, pout, true); err != nil {
			if !errors.Is(err, gemm.ErrShape) && !errors.Is(err, gemm.ErrIndices) {
				t.Fatalf("PagedMQALogits: %v wraps no sentinel", err)
			}
			return
		}
		for r := 0; r < bsz*nextN; r++ {
			vis := pin.Visible(r/nextN, r%nextN)
			for j := 0; j < pin.MaxContextLen; j++ {
				if v := pout[r*pin.MaxContextLen+j]; (j < vis) == math.IsInf(float64(v), -1) || math.IsNaN(float64(v)) {
					t.Fatalf("paged logits[%d,%d] = %v with %d visible", r, j, v, vis)
				}
			}
		}
	})
}
