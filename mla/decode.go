package mla

import (
	"context"
	"errors"
	"math"
	"runtime"

	"github.com/fireflyer-go/fireflyer/internal/registry"
)

// Query is the query batch of one decode step: Data holds [B, SQ, HQ, D]
// float32 values row-major, D being the cache's HeadDim (576 for
// DeepSeek-V3: the absorbed q_nope·W_UK (512) then q_pe (64)). SQ (query
// tokens per request, >1 for MTP / speculative decoding) is the same for
// every request, as in FlashMLA. Values need not be representable in the
// cache dtype; callers that hold BF16 queries decode them first.
type Query struct {
	Data      []float32
	B, SQ, HQ int
}

// Options are the optional arguments of Decode. The zero value is
// FlashMLA's defaults.
type Options struct {
	// HeadDimV is the width of V, the first HeadDimV channels of each cache
	// row (upstream's head_dim_v). 0 means 512, or the cache's HeadDim if
	// that is smaller.
	HeadDimV int
	// Scale is the softmax scale. 0 means upstream's default 1/√HeadDim
	// (1/√576 ≈ 0.0417), which is not DeepSeek-V3's: pass DeepSeekV3Scale
	// (≈ 0.13524) for that model.
	Scale float32
	// Causal applies the bottom-right-aligned causal mask: query token j of
	// a request of length L sees keys 0 … L−SQ+j. It changes nothing when
	// SQ = 1.
	Causal bool
	// Schedule is a schedule from Plan(cacheSeqlens, n) to reuse across
	// layers; nil plans one with NumParts parts.
	Schedule *Schedule
	// NumParts is the part count when Schedule is nil; 0 means
	// DefaultNumParts(backend, problem): for the Go backends
	// NumSMParts(4·GOMAXPROCS, SQ, HQ, h_kv), the machine's parallelism
	// standing in for upstream's SM count. Results depend on the schedule
	// only, never on GOMAXPROCS as such; pass NumParts (or a Schedule) for
	// bit-identical results across machines and GOMAXPROCS settings.
	NumParts int
}

// Problem is a validated decode problem as backends receive it. Shapes:
// Q [B, SQ, HQ, Cache.HeadDim]; BlockTable [B][≥ceil(L_i/PageSize)] block
// ids; CacheSeqlens [B]. Outputs of a backend: out [B, SQ, HQ, HeadDimV] and
// lse [B, HQ, SQ] (natural log), float32.
type Problem struct {
	Q            []float32
	B, SQ, HQ    int
	Cache        *PagedCache
	BlockTable   [][]int32
	CacheSeqlens []int32
	HeadDimV     int
	Scale        float32
	Causal       bool

	host CacheHost // Cache resolved to host slices, for the Go backends
}

// onHost returns a copy of p with the cache's host slices resolved, once
// per call, for the backends that compute on the CPU. Errors: those of
// PagedCache.Host (ErrUnsupported and tensor.ErrNotHost for device storage).
func (p *Problem) onHost() (*Problem, error) {
	h, err := p.Cache.Host()
	if err != nil {
		return nil, err
	}
	q := *p
	q.host = h
	return &q, nil
}

// HKV returns the number of KV heads, Cache.NumKVHeads.
func (p *Problem) HKV() int { return p.Cache.NumKVHeads }

// HeadsPerKV returns HQ/HKV: query head h reads KV head h/HeadsPerKV()
// (torch's repeat_interleave).
func (p *Problem) HeadsPerKV() int { return p.HQ / p.Cache.NumKVHeads }

// Rows returns the query rows that share one KV head, SQ·HQ/HKV
// (upstream's num_heads_per_head_k · s_q). Row m = j·HeadsPerKV() + hh is
// query token j, head kvh·HeadsPerKV() + hh.
func (p *Problem) Rows() int { return p.SQ * p.HeadsPerKV() }

// Visible returns how many keys query token j of request req may attend:
// L, or L−SQ+j+1 (never below 0) under the causal mask.
func (p *Problem) Visible(req, j int) int {
	l := int(p.CacheSeqlens[req])
	if p.Causal {
		return max(0, min(l, l-p.SQ+j+1))
	}
	return l
}

// Backend computes MLA decode attention. Implementations: "ref" (scalar
// online softmax, obviously right) and "cpu" (blocked, parallel; the
// default); a CUDA backend plugs in through the same interface and the
// conformance suite in package mlatest (its oracle in mla/oracle).
type Backend interface {
	// Name is the name the backend is registered under.
	Name() string
	// Supports returns nil, or an error wrapping ErrUnsupported that names
	// the feature the backend lacks (e.g. "page size 16"). The conformance
	// suite skips such cases.
	Supports(p *Problem) error
	// Decode computes out [B, SQ, HQ, HeadDimV] and lse [B, HQ, SQ] (natural
	// log; +Inf with out = 0 for a row that sees no key) for a validated
	// problem, following schedule s (from Plan(p.CacheSeqlens, n)). It
	// overwrites every element of out and lse.
	Decode(ctx context.Context, p *Problem, s *Schedule, out, lse []float32) error
}

// BackendOptions configures a backend constructed by NewBackend. Each
// backend reads the fields it understands.
type BackendOptions struct {
	// Kernels selects the cpu backend's kernel set (CPUOptions.Kernels);
	// the ref backend ignores it.
	Kernels string
}

var backends = registry.Registry[Backend, BackendOptions]{Kind: "mla"}

// Register makes a backend constructible by NewBackend and listed by
// Backends under name; backend packages call it from init (this package
// registers "ref" and "cpu"). It panics on an empty or duplicate name.
func Register(name, doc string, probe func() error, newBackend func(BackendOptions) (Backend, error)) {
	backends.Register(registry.Entry[Backend, BackendOptions]{Name: name, Doc: doc, Probe: probe, New: newBackend})
}

// NewBackend constructs the backend registered under name ("cpu", "ref")
// with opts. Errors: an *ArgError wrapping ErrUnknownBackend for a name
// nobody registered (naming the ones that are), or the backend's reason for
// being unavailable here.
func NewBackend(name string, opts BackendOptions) (Backend, error) {
	b, err := backends.New(name, opts)
	if errors.Is(err, registry.ErrUnknown) {
		return nil, argErr("backend", ErrUnknownBackend, "no backend %q (have %v)", name, backends.Names())
	}
	return b, err
}

// BackendNames returns the registered backend names, sorted.
func BackendNames() []string { return backends.Names() }

// Backends lists the registered backends and whether each can be
// constructed here, sorted by name (for `fireflyer info`).
func Backends() []registry.Status { return backends.List() }

// NewRef returns the "ref" backend: a scalar online softmax, slow by
// design, the yardstick the conformance suite holds faster backends to.
func NewRef() Backend { return refBackend{} }

// PartsAdvisor is implemented by backends that choose the default part
// count of the schedule themselves (a CUDA backend from its SM count, the Go
// backends from GOMAXPROCS).
type PartsAdvisor interface {
	// DefaultNumParts returns the part count for p (≥ 1).
	DefaultNumParts(p *Problem) int
}

// DefaultNumParts returns the part count Decode plans with when the caller
// gives none: be's own choice if it implements PartsAdvisor, else upstream's
// NumSMParts(H800SMs, SQ, HQ, h_kv). A nil p (nothing to plan) gives 1.
func DefaultNumParts(be Backend, p *Problem) int {
	if p == nil {
		return 1
	}
	if a, ok := be.(PartsAdvisor); ok {
		if n := a.DefaultNumParts(p); n >= 1 {
			return n
		}
	}
	return NumSMParts(H800SMs, p.SQ, p.HQ, p.HKV())
}

// goParts is the Go backends' default part count: as many SM-equivalents
// as 4×GOMAXPROCS, so that every goroutine gets a few splits to balance
// ragged batches without paying for splits it cannot use (each split costs
// a Rows×HeadDimV partial output and a combine).
func goParts(p *Problem) int { return NumSMParts(4*runtime.GOMAXPROCS(0), p.SQ, p.HQ, p.HKV()) }

func init() {
	Register("ref", "pure Go, the literal spec", nil,
		func(BackendOptions) (Backend, error) { return NewRef(), nil })
	Register("cpu", "blocked parallel MLA decode (AVX-512/AVX2 kernels, pure Go otherwise)", nil,
		func(o BackendOptions) (Backend, error) { return NewCPU(CPUOptions(o)) })
}

// NewProblem validates the arguments of Decode and returns the problem a
// backend runs. Errors are *ArgError values naming the argument and wrapping
// ErrShape (mismatched shapes, h_q not divisible by h_kv, HeadDimV >
// HeadDim, a NaN or infinite scale), ErrSeqlen (a negative length),
// ErrBlockTable (a row shorter than ceil(L/PageSize) or a block id out of
// range in the part of a row that is read) or ErrDType. Block-table entries
// past a request's last page are never read or checked.
func NewProblem(q Query, cache *PagedCache, blockTable [][]int32, cacheSeqlens []int32, opts *Options) (*Problem, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := cache.Check(); err != nil {
		return nil, err
	}
	if q.B <= 0 || q.SQ <= 0 || q.HQ <= 0 {
		return nil, argErr("q", ErrShape, "shape [%d, %d, %d, %d]: batch, s_q and h_q must be > 0", q.B, q.SQ, q.HQ, cache.HeadDim)
	}
	const maxElems = 1 << 40
	if q.B > maxElems/q.SQ/q.HQ/cache.HeadDim {
		return nil, argErr("q", ErrShape, "shape [%d, %d, %d, %d] is too large", q.B, q.SQ, q.HQ, cache.HeadDim)
	}
	if n := q.B * q.SQ * q.HQ * cache.HeadDim; len(q.Data) != n {
		return nil, argErr("q", ErrShape, "%d elements, want [%d, %d, %d, %d] = %d", len(q.Data), q.B, q.SQ, q.HQ, cache.HeadDim, n)
	}
	if q.HQ%cache.NumKVHeads != 0 {
		return nil, argErr("q", ErrShape, "h_q = %d is not a multiple of h_kv = %d", q.HQ, cache.NumKVHeads)
	}
	dv := o.HeadDimV
	if dv == 0 {
		dv = min(HeadDimV, cache.HeadDim)
	}
	if dv < 0 || dv > cache.HeadDim {
		return nil, argErr("head_dim_v", ErrShape, "head_dim_v = %d, want 1 … head dim %d", dv, cache.HeadDim)
	}
	scale := o.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(cache.HeadDim)))
	}
	if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) {
		return nil, argErr("softmax_scale", ErrShape, "scale %v is not finite", scale)
	}
	if len(cacheSeqlens) != q.B {
		return nil, argErr("cache_seqlens", ErrShape, "length %d, want batch %d", len(cacheSeqlens), q.B)
	}
	if len(blockTable) != q.B {
		return nil, argErr("block_table", ErrShape, "%d rows, want batch %d", len(blockTable), q.B)
	}
	for i, l := range cacheSeqlens {
		if l < 0 {
			return nil, argErr("cache_seqlens", ErrSeqlen, "cache_seqlens[%d] = %d is negative", i, l)
		}
		need := (int(l) + cache.PageSize - 1) / cache.PageSize
		row := blockTable[i]
		if len(row) < need {
			return nil, argErr("block_table", ErrBlockTable, "row %d has %d entries, sequence of %d tokens needs %d pages of %d", i, len(row), l, need, cache.PageSize)
		}
		for k, id := range row[:need] {
			if id < 0 || int(id) >= cache.NumBlocks {
				return nil, argErr("block_table", ErrBlockTable, "block_table[%d][%d] = %d outside [0, %d)", i, k, id, cache.NumBlocks)
			}
		}
	}
	return &Problem{
		Q: q.Data, B: q.B, SQ: q.SQ, HQ: q.HQ,
		Cache: cache, BlockTable: blockTable, CacheSeqlens: cacheSeqlens,
		HeadDimV: dv, Scale: scale, Causal: o.Causal && q.SQ > 1,
	}, nil
}

// Decode computes MLA decode attention over a paged KV cache, mirroring
// FlashMLA's flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens,
// head_dim_v, tile_scheduler_metadata, num_splits, softmax_scale, causal).
//
// q is [B, SQ, HQ, HeadDim]; cache holds [NumBlocks, PageSize, h_kv, HeadDim]
// rows whose first HeadDimV channels are V; blockTable[i] lists request i's
// pages in order; cacheSeqlens[i] is its length L_i. It returns out
// [B, SQ, HQ, HeadDimV] and lse [B, HQ, SQ] (natural log), both float32:
//
//	out[i,j,h] = Σ_t softmax_t(scale·⟨q[i,j,h], K_t⟩)·V_t,  lse = ln Σ_t exp(scale·⟨q, K_t⟩)
//
// over the keys t the row sees (all L_i, or 0 … L_i−SQ+j if causal); query
// head h reads KV head h/(HQ/h_kv). A row that sees no key gets out = 0 and
// lse = +Inf. Cache slots past L_i and block-table entries past its last
// page are never read, so they may hold NaN and garbage.
//
// A cache of the FP8 storage kind (DType tensor.E4M3T, FlashMLA's
// is_fp8_kvcache) is read in place: the Go backends dequantize each key row
// as they gather it (DequantizeFP8Row's values).
//
// be nil means Default(). Errors: those of NewProblem; ErrShape for an
// opts.Schedule planned for other lengths; ErrUnsupported from the backend;
// ctx.Err() if ctx is cancelled.
func Decode(ctx context.Context, be Backend, q Query, cache *PagedCache, blockTable [][]int32, cacheSeqlens []int32, opts *Options) (out, lse []float32, err error) {
	if be == nil {
		be = Default()
	}
	p, err := NewProblem(q, cache, blockTable, cacheSeqlens, opts)
	if err != nil {
		return nil, nil, err
	}
	var s *Schedule
	if opts != nil && opts.Schedule != nil {
		s = opts.Schedule
		if err := s.check(cacheSeqlens); err != nil {
			return nil, nil, err
		}
	} else {
		n := DefaultNumParts(be, p)
		if opts != nil && opts.NumParts != 0 {
			n = opts.NumParts
		}
		if s, err = Plan(cacheSeqlens, n); err != nil {
			return nil, nil, err
		}
	}
	if err := be.Supports(p); err != nil {
		return nil, nil, err
	}
	out = make([]float32, p.B*p.SQ*p.HQ*p.HeadDimV)
	lse = make([]float32, p.B*p.HQ*p.SQ)
	if err := be.Decode(ctx, p, s, out, lse); err != nil {
		return nil, nil, err
	}
	return out, lse, nil
}
