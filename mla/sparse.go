package mla

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/registry"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// SparseDecodeOptions are the optional arguments of SparseDecode, mirroring
// the keyword arguments of FlashMLA's flash_mla_with_kvcache in sparse mode.
// The zero value is upstream's defaults.
type SparseDecodeOptions struct {
	// Scale is softmax_scale; 0 means 1/√576. DeepSeek-V3.2 uses
	// DeepSeekV3Scale.
	Scale float32
	// HeadDimV is head_dim_v; 0 means 512, the only value upstream accepts
	// (and the only one this package accepts).
	HeadDimV int
	// TopkLength is topk_length [B]: only the first TopkLength[b] entries
	// of request b's index rows are used. nil means all topk.
	TopkLength []int32
	// AttnSink is attn_sink [HQ]: a per-head logit (natural units) that
	// enters the softmax denominator only (no value vector, and not the
	// returned lse). −Inf means no sink; +Inf gives out = 0. nil means none.
	AttnSink []float32
	// ExtraCache is extra_k_cache, a second cache of the FP8 storage kind
	// (own page size) whose keys join the same softmax after the main
	// ones; ExtraIndices [B, SQ, ExtraTopK] (extra_indices_in_kvcache) index
	// it and ExtraTopkLength [B] (extra_topk_length, nil means all) cuts
	// them. All nil/zero means no extra cache.
	ExtraCache      *PagedCache
	ExtraIndices    []int32
	ExtraTopK       int
	ExtraTopkLength []int32
}

// SparseDecodeProblem is a validated sparse decode as backends receive it:
// Q [B, SQ, HQ, 576]; Cache (and ExtraCache) the FP8 records of the caches
// passed; Indices [B, SQ, TopK] into Cache (−1 = none, every
// other used entry in range); TopkLength [B] (never nil: defaulted to TopK);
// AttnSink [HQ] or nil; the extra cache fields likewise (ExtraCache nil when
// absent, ExtraTopkLength defaulted). Outputs: out [B, SQ, HQ, HeadDimV],
// lse [B, HQ, SQ] (natural log, sink excluded; +Inf with out = 0 for a row
// with no valid index).
type SparseDecodeProblem struct {
	Q               []float32
	B, SQ, HQ       int
	Cache           *FP8Cache
	Indices         []int32
	TopK            int
	TopkLength      []int32
	AttnSink        []float32
	ExtraCache      *FP8Cache
	ExtraIndices    []int32
	ExtraTopK       int
	ExtraTopkLength []int32
	HeadDimV        int
	Scale           float32
}

// SparsePrefillInput holds the tensors of FlashMLA's flash_mla_sparse_fwd:
// Q [SQ, HQ, DQK] and KV [SKV, HKV, DQK] (float32; callers holding BF16
// decode them first), Indices [SQ, HKV, TopK] of direct KV row numbers.
// Query head h reads KV head h/(HQ/HKV); upstream has HKV = 1. There is no
// batch dimension: concatenate requests along SKV and offset their indices.
type SparsePrefillInput struct {
	Q        []float32
	SQ, HQ   int
	KV       []float32
	SKV, HKV int
	DQK      int
	Indices  []int32
	TopK     int
}

// SparsePrefillOptions are the optional arguments of SparsePrefill.
type SparsePrefillOptions struct {
	// Scale is sm_scale; 0 means 1/√DQK.
	Scale float32
	// HeadDimV is d_v, the width of V = KV[..., :HeadDimV]; 0 means 512
	// (or DQK if smaller).
	HeadDimV int
	// AttnSink [HQ] as in SparseDecodeOptions; nil means none.
	AttnSink []float32
	// TopkLength [SQ]: only the first TopkLength[i] entries of query i's
	// index rows are used; nil means all.
	TopkLength []int32
}

// SparsePrefillProblem is a validated sparse prefill as backends receive
// it (TopkLength defaulted, Scale and HeadDimV resolved). Outputs: out
// [SQ, HQ, HeadDimV], maxLogits [SQ, HQ] (scale·q·k maximum, natural units;
// −Inf for a row with no valid key) and lse [SQ, HQ] (natural log, sink
// excluded; +Inf for a row with no valid key, whose out is 0).
type SparsePrefillProblem struct {
	SparsePrefillInput
	HeadDimV   int
	Scale      float32
	AttnSink   []float32
	TopkLength []int32
}

// SparseBackend computes DeepSeek-V3.2 sparse attention (DSA's MLA half).
// Implementations: "ref" (literal, float64 accumulation) and "cpu" (tiled,
// SIMD, parallel, the default); see NewSparseBackend. Only the front
// functions (SparseDecode, SparsePrefill) validate arguments.
type SparseBackend interface {
	// Name is the name the backend is registered under.
	Name() string
	// SparseDecode computes out and lse of a validated problem (see
	// SparseDecodeProblem), overwriting every element.
	SparseDecode(ctx context.Context, p *SparseDecodeProblem, out, lse []float32) error
	// SparsePrefill computes out, maxLogits and lse of a validated problem
	// (see SparsePrefillProblem), overwriting every element.
	SparsePrefill(ctx context.Context, p *SparsePrefillProblem, out, maxLogits, lse []float32) error
}

// sparseBackends is the registry of sparse attention backends.
var sparseBackends = registry.Registry[SparseBackend, BackendOptions]{Kind: "mla-sparse"}

func init() {
	sparseBackends.Register(registry.Entry[SparseBackend, BackendOptions]{
		Name: "ref", Doc: "sparse MLA decode/prefill, literal float64-accumulated reference",
		New: func(BackendOptions) (SparseBackend, error) { return sparseRef{}, nil },
	})
	sparseBackends.Register(registry.Entry[SparseBackend, BackendOptions]{
		Name: "cpu", Doc: "sparse MLA decode/prefill, tiled SIMD GEMMs on all cores (default)",
		New: func(o BackendOptions) (SparseBackend, error) {
			ks, err := kernels.ForName(o.Kernels)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrKernels, err)
			}
			return sparseCPU{ks: ks}, nil
		},
	})
}

// NewSparseBackend constructs the sparse backend registered under name
// ("cpu", "ref") with opts (the cpu backend reads Kernels, as NewBackend's
// does). Errors: an *ArgError wrapping ErrUnknownBackend for a name nobody
// registered (naming the ones that are), or one wrapping ErrKernels for a
// kernel set this machine cannot run.
func NewSparseBackend(name string, opts BackendOptions) (SparseBackend, error) {
	b, err := sparseBackends.New(name, opts)
	if errors.Is(err, registry.ErrUnknown) {
		return nil, argErr("backend", ErrUnknownBackend, "no sparse backend %q (have %v)", name, sparseBackends.Names())
	}
	return b, err
}

// SparseBackendNames returns the registered sparse backend names, sorted.
func SparseBackendNames() []string { return sparseBackends.Names() }

// SparseBackends lists the registered sparse backends and whether each can
// be constructed here, sorted by name (for `fireflyer info`).
func SparseBackends() []registry.Status { return sparseBackends.List() }

const maxSparseElems = 1 << 40

func checkScale(s float32, d int) (float32, error) {
	if s == 0 {
		s = float32(1 / math.Sqrt(float64(d)))
	}
	if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
		return 0, argErr("softmax_scale", ErrShape, "scale %v is not finite", s)
	}
	return s, nil
}

func checkSink(sink []float32, hq int) error {
	if sink != nil && len(sink) != hq {
		return argErr("attn_sink", ErrShape, "length %d, want h_q = %d", len(sink), hq)
	}
	for h, v := range sink {
		if v != v {
			return argErr("attn_sink", ErrShape, "attn_sink[%d] is NaN", h)
		}
	}
	return nil
}

// checkTopkLength returns tl, or a slice of n copies of topk when tl is nil.
func checkTopkLength(arg string, tl []int32, n, topk int) ([]int32, error) {
	if tl == nil {
		tl = make([]int32, n)
		for i := range tl {
			tl[i] = int32(topk)
		}
		return tl, nil
	}
	if len(tl) != n {
		return nil, argErr(arg, ErrShape, "length %d, want %d", len(tl), n)
	}
	for i, v := range tl {
		if v < 0 || int(v) > topk {
			return nil, argErr(arg, ErrShape, "%s[%d] = %d outside [0, topk = %d]", arg, i, v, topk)
		}
	}
	return tl, nil
}

// checkDecodeIndices validates indices [b, sq, topk] against a cache of
// tokens slots, for the first tl[b] entries of each row.
func checkDecodeIndices(arg string, idx []int32, b, sq, topk int, tl []int32, tokens int) error {
	if topk < 0 || (b*sq > 0 && topk > maxSparseElems/(b*sq)) {
		return argErr(arg, ErrShape, "topk %d is out of range", topk)
	}
	if len(idx) != b*sq*topk {
		return argErr(arg, ErrShape, "%d entries, want [%d, %d, %d] = %d", len(idx), b, sq, topk, b*sq*topk)
	}
	for i := range b {
		for j := range sq {
			row := idx[(i*sq+j)*topk:][:tl[i]]
			for k, v := range row {
				if v != -1 && (v < 0 || int(v) >= tokens) {
					return argErr(arg, ErrIndex, "%s[%d][%d][%d] = %d: want −1 or a token index in [0, %d)", arg, i, j, k, v, tokens)
				}
			}
		}
	}
	return nil
}

// NewSparseDecodeProblem validates the arguments of SparseDecode. Errors are
// *ArgError values naming the argument: ErrShape for mismatched shapes
// (q not [B, SQ, HQ, 576], indices not [B, SQ, topk], topk_length not [B]
// or an entry outside [0, topk], attn_sink not [HQ] or NaN, head_dim_v other
// than 512, a non-finite scale, extra indices without an extra cache),
// ErrIndex for a used index other than −1 outside the cache, ErrDType for
// a cache that is not of the FP8 storage kind (upstream requires
// is_fp8_kvcache), and the caches' own errors ("k_cache", "extra_k_cache").
func NewSparseDecodeProblem(q Query, kcache *PagedCache, indices []int32, topk int, opts *SparseDecodeOptions) (*SparseDecodeProblem, error) {
	var o SparseDecodeOptions
	if opts != nil {
		o = *opts
	}
	cache, err := fp8Of("k_cache", kcache)
	if err != nil {
		return nil, err
	}
	if q.B <= 0 || q.SQ <= 0 || q.HQ <= 0 {
		return nil, argErr("q", ErrShape, "shape [%d, %d, %d, %d]: batch, s_q and h_q must be > 0", q.B, q.SQ, q.HQ, HeadDim)
	}
	if q.B > maxSparseElems/q.SQ/q.HQ/HeadDim {
		return nil, argErr("q", ErrShape, "shape [%d, %d, %d, %d] is too large", q.B, q.SQ, q.HQ, HeadDim)
	}
	if n := q.B * q.SQ * q.HQ * HeadDim; len(q.Data) != n {
		return nil, argErr("q", ErrShape, "%d elements, want [%d, %d, %d, %d] = %d", len(q.Data), q.B, q.SQ, q.HQ, HeadDim, n)
	}
	dv := o.HeadDimV
	if dv == 0 {
		dv = HeadDimV
	}
	if dv != HeadDimV {
		return nil, argErr("head_dim_v", ErrShape, "head_dim_v = %d, want %d", dv, HeadDimV)
	}
	scale, err := checkScale(o.Scale, HeadDim)
	if err != nil {
		return nil, err
	}
	if err := checkSink(o.AttnSink, q.HQ); err != nil {
		return nil, err
	}
	if topk < 0 {
		return nil, argErr("indices", ErrShape, "topk %d is negative", topk)
	}
	tl, err := checkTopkLength("topk_length", o.TopkLength, q.B, topk)
	if err != nil {
		return nil, err
	}
	if err := checkDecodeIndices("indices", indices, q.B, q.SQ, topk, tl, cache.Tokens()); err != nil {
		return nil, err
	}
	p := &SparseDecodeProblem{
		Q: q.Data, B: q.B, SQ: q.SQ, HQ: q.HQ, Cache: cache, Indices: indices, TopK: topk,
		TopkLength: tl, AttnSink: o.AttnSink, HeadDimV: dv, Scale: scale,
	}
	if o.ExtraCache == nil {
		if o.ExtraIndices != nil || o.ExtraTopK != 0 || o.ExtraTopkLength != nil {
			return nil, argErr("extra_k_cache", ErrShape, "extra indices or lengths given without an extra cache")
		}
		return p, nil
	}
	extra, err := fp8Of("extra_k_cache", o.ExtraCache)
	if err != nil {
		return nil, err
	}
	if o.ExtraTopK < 0 {
		return nil, argErr("extra_indices_in_kvcache", ErrShape, "extra topk %d is negative", o.ExtraTopK)
	}
	etl, err := checkTopkLength("extra_topk_length", o.ExtraTopkLength, q.B, o.ExtraTopK)
	if err != nil {
		return nil, err
	}
	if err := checkDecodeIndices("extra_indices_in_kvcache", o.ExtraIndices, q.B, q.SQ, o.ExtraTopK, etl, extra.Tokens()); err != nil {
		return nil, err
	}
	p.ExtraCache, p.ExtraIndices, p.ExtraTopK, p.ExtraTopkLength = extra, o.ExtraIndices, o.ExtraTopK, etl
	return p, nil
}

// fp8Of returns the FP8 records of c, a cache of the FP8 storage kind,
// after checking it; errors name arg.
func fp8Of(arg string, c *PagedCache) (*FP8Cache, error) {
	if c == nil {
		return nil, argErr(arg, ErrShape, "nil cache")
	}
	if c.DType != tensor.E4M3T {
		return nil, argErr(arg, ErrDType, "dtype %v: sparse decode reads the V3.2 FP8 storage kind (E4M3, NewFP8PagedCache), as upstream requires is_fp8_kvcache", c.DType)
	}
	if err := c.Check(); err != nil {
		var ae *ArgError
		if errors.As(err, &ae) {
			ae.Arg = arg
		}
		return nil, err
	}
	return c.FP8, nil
}

// hostCaches resolves the problem's caches to host bytes (the Go backends
// call it once per call); the extra one is zero when absent.
func (p *SparseDecodeProblem) hostCaches() (main, extra fp8Host, err error) {
	if main, err = p.Cache.host("k_cache"); err != nil {
		return
	}
	if p.ExtraCache != nil {
		extra, err = p.ExtraCache.host("extra_k_cache")
	}
	return
}

// SparseDecode computes DeepSeek-V3.2 sparse MLA decode over an FP8 cache,
// mirroring FlashMLA's flash_mla_with_kvcache(q, k_cache, None, None,
// head_dim_v, ..., softmax_scale, is_fp8_kvcache=True, indices, attn_sink,
// extra_k_cache, extra_indices_in_kvcache, topk_length, extra_topk_length).
//
// q is [B, SQ, HQ, 576] (absorbed q_nope·W_UK, then q_pe); cache is of the
// FP8 storage kind (NewFP8PagedCache); indices is
// [B, SQ, topk] int32 token indices into cache (physical block·page + slot;
// −1 = no token). For each query row (b, j) and head h, over the valid
// entries S (≠ −1 and before topk_length[b]; duplicates count once per
// occurrence), then the valid extra entries:
//
//	z_t = scale·⟨q, K_t⟩,  lse = ln Σ_S exp z_t,
//	out = Σ_S exp(z_t − lse)·V_t · exp(lse)/(exp(lse) + exp(sink_h))
//
// with V_t = K_t[:512]. The sink enters only the denominator: the returned
// lse excludes it. A row with no valid entry gets out = 0 and lse = +Inf
// whatever the sink. It returns out [B, SQ, HQ, 512] and lse [B, HQ, SQ]
// (natural log), float32. Only the records the valid entries name are
// read.
//
// be nil means the cpu sparse backend on its best kernels. Errors: those of
// NewSparseDecodeProblem; ctx.Err() if ctx is cancelled.
func SparseDecode(ctx context.Context, be SparseBackend, q Query, cache *PagedCache, indices []int32, topk int, opts *SparseDecodeOptions) (out, lse []float32, err error) {
	p, err := NewSparseDecodeProblem(q, cache, indices, topk, opts)
	if err != nil {
		return nil, nil, err
	}
	if be == nil {
		be = sparseCPU{ks: kernels.Best()}
	}
	out = make([]float32, p.B*p.SQ*p.HQ*p.HeadDimV)
	lse = make([]float32, p.B*p.HQ*p.SQ)
	if err := be.SparseDecode(ctx, p, out, lse); err != nil {
		return nil, nil, err
	}
	return out, lse, nil
}

// NewSparsePrefillProblem validates the arguments of SparsePrefill. Errors
// are *ArgError values wrapping ErrShape and naming the argument: q or kv
// of the wrong length or with a non-positive dim, h_q not a multiple of
// h_kv, indices not [SQ, HKV, topk], d_v outside [1, DQK], topk_length not
// [SQ] or an entry outside [0, topk], attn_sink not [HQ] or NaN, a
// non-finite sm_scale. Index values are not errors: entries outside
// [0, SKV) are invalid keys.
func NewSparsePrefillProblem(in SparsePrefillInput, opts *SparsePrefillOptions) (*SparsePrefillProblem, error) {
	var o SparsePrefillOptions
	if opts != nil {
		o = *opts
	}
	if in.SQ <= 0 || in.HQ <= 0 || in.DQK <= 0 {
		return nil, argErr("q", ErrShape, "shape [%d, %d, %d]: all dims must be > 0", in.SQ, in.HQ, in.DQK)
	}
	if in.SKV < 0 || in.HKV <= 0 {
		return nil, argErr("kv", ErrShape, "shape [%d, %d, %d]: need s_kv ≥ 0 and h_kv > 0", in.SKV, in.HKV, in.DQK)
	}
	if in.SQ > maxSparseElems/in.HQ/in.DQK || (in.SKV > 0 && in.SKV > maxSparseElems/in.HKV/in.DQK) {
		return nil, argErr("q", ErrShape, "shapes q [%d, %d, %d], kv [%d, %d, %d] are too large", in.SQ, in.HQ, in.DQK, in.SKV, in.HKV, in.DQK)
	}
	if n := in.SQ * in.HQ * in.DQK; len(in.Q) != n {
		return nil, argErr("q", ErrShape, "%d elements, want [%d, %d, %d] = %d", len(in.Q), in.SQ, in.HQ, in.DQK, n)
	}
	if n := in.SKV * in.HKV * in.DQK; len(in.KV) != n {
		return nil, argErr("kv", ErrShape, "%d elements, want [%d, %d, %d] = %d", len(in.KV), in.SKV, in.HKV, in.DQK, n)
	}
	if in.HQ%in.HKV != 0 {
		return nil, argErr("q", ErrShape, "h_q = %d is not a multiple of h_kv = %d", in.HQ, in.HKV)
	}
	if in.TopK < 0 || in.TopK > maxSparseElems/in.SQ/in.HKV {
		return nil, argErr("indices", ErrShape, "topk %d is out of range", in.TopK)
	}
	if n := in.SQ * in.HKV * in.TopK; len(in.Indices) != n {
		return nil, argErr("indices", ErrShape, "%d entries, want [%d, %d, %d] = %d", len(in.Indices), in.SQ, in.HKV, in.TopK, n)
	}
	dv := o.HeadDimV
	if dv == 0 {
		dv = min(HeadDimV, in.DQK)
	}
	if dv < 1 || dv > in.DQK {
		return nil, argErr("d_v", ErrShape, "d_v = %d, want 1 … d_qk = %d", dv, in.DQK)
	}
	scale, err := checkScale(o.Scale, in.DQK)
	if err != nil {
		return nil, err
	}
	if err := checkSink(o.AttnSink, in.HQ); err != nil {
		return nil, err
	}
	tl, err := checkTopkLength("topk_length", o.TopkLength, in.SQ, in.TopK)
	if err != nil {
		return nil, err
	}
	return &SparsePrefillProblem{SparsePrefillInput: in, HeadDimV: dv, Scale: scale, AttnSink: o.AttnSink, TopkLength: tl}, nil
}

// SparsePrefill computes DeepSeek-V3.2 sparse MLA prefill, mirroring
// FlashMLA's flash_mla_sparse_fwd(q, kv, indices, sm_scale, d_v, attn_sink,
// topk_length). For query i, head h (KV head g = h/(HQ/HKV)) and the valid
// entries S of indices[i, g, :topk_length[i]] (0 ≤ index < SKV; others are
// skipped; duplicates count once per occurrence):
//
//	z_t = scale·⟨q[i,h], kv[t,g]⟩,  maxLogits = max_S z_t,  lse = ln Σ_S exp z_t,
//	out = Σ_S exp(z_t − lse)·kv[t,g,:d_v] · exp(lse)/(exp(lse) + exp(sink_h))
//
// It returns out [SQ, HQ, d_v], maxLogits [SQ, HQ] and lse [SQ, HQ]
// (natural log, sink excluded), float32. A row with no valid entry gets
// out = 0, maxLogits = −Inf and lse = +Inf. Only valid rows of kv are read.
//
// be nil means the cpu sparse backend on its best kernels. Errors: those of
// NewSparsePrefillProblem; ctx.Err() if ctx is cancelled.
func SparsePrefill(ctx context.Context, be SparseBackend, in SparsePrefillInput, opts *SparsePrefillOptions) (out, maxLogits, lse []float32, err error) {
	p, err := NewSparsePrefillProblem(in, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if be == nil {
		be = sparseCPU{ks: kernels.Best()}
	}
	out = make([]float32, p.SQ*p.HQ*p.HeadDimV)
	maxLogits = make([]float32, p.SQ*p.HQ)
	lse = make([]float32, p.SQ*p.HQ)
	if err := be.SparsePrefill(ctx, p, out, maxLogits, lse); err != nil {
		return nil, nil, nil, err
	}
	return out, maxLogits, lse, nil
}

// sinkFactor returns exp(lse)/(exp(lse)+exp(sink)) = 1/(1+exp(sink−lse)),
// computed in float64 (1 for sink −Inf, 0 for +Inf).
func sinkFactor(lse float64, sink float32) float64 {
	if math.IsInf(float64(sink), -1) {
		return 1
	}
	return 1 / (1 + math.Exp(float64(sink)-lse))
}
