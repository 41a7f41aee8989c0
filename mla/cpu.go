package mla

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// CPU is the "cpu" backend, the default: the fast Go implementation.
//
// It runs the schedule's (request, KV head, split) units on up to GOMAXPROCS
// goroutines. Within a unit it walks the keys in tiles of TileN tokens: each
// tile's cache rows are decoded to float32 once and shared by all the
// SQ·HQ/h_kv query rows of that KV head (128 for DeepSeek-V3), Sᵀ = K·(scale·
// log2e·Q)ᵀ (Qᵀ built once per request and KV head) and O += P·V run as
// register-blocked GEMMs, and the online softmax works in base 2. Keys a row
// may not see get P = 0 and slots past a sequence are never read. With fewer
// than 4 rows per KV head (h_q = 1) the problem is bandwidth-bound, and for a
// BF16 cache it reads the rows in place with fused decode+dot and
// decode+axpy kernels, two query rows per pass. Kernels are AVX-512 or
// AVX2+FMA assembly where the CPU has them, pure Go otherwise: Default runs
// the best set this machine has, NewCPU the one its options name. Buffers
// are pooled across calls. It supports every problem NewProblem accepts.
//
// Besides Backend's methods, the cpu backend's value (Default's and
// NewCPU's) has Kernels() string, the name of its kernel set ("avx512",
// "avx2", "neon" or "go"), reached through an interface assertion
// (mla/oracle.Measure does).
func Default() Backend { return cpuBackend{ks: kernels.Best()} }

// CPUOptions configures NewCPU.
type CPUOptions struct {
	// Kernels selects the kernel set: "avx512" (needs AVX-512 F, BW and DQ),
	// "avx2" (AVX2+FMA), "neon" (arm64 Advanced SIMD), "go" (alias
	// "generic": pure Go), or "" for the best this CPU and build run. The sets agree within float32 rounding; each
	// is deterministic.
	Kernels string
}

// ErrKernels is wrapped by NewCPU's error for a kernel set that is unknown
// or that this CPU or build cannot run.
var ErrKernels = errors.New("mla: kernel set unknown or not supported by this CPU or build")

// NewCPU returns a cpu backend on the kernel set o names, or an error
// wrapping ErrKernels. Backends on different sets may run concurrently.
func NewCPU(o CPUOptions) (Backend, error) {
	ks, err := kernels.ForName(o.Kernels)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKernels, err)
	}
	return cpuBackend{ks: ks}, nil
}

// TileN is the number of keys the cpu backend decodes and multiplies at a
// time.
const TileN = 64

type cpuBackend struct{ ks kernels.Set }

// Kernels names the backend's kernel set: "avx512", "avx2", "neon" or "go".
func (b cpuBackend) Kernels() string { return b.ks.String() }

// Name returns "cpu".
func (cpuBackend) Name() string { return "cpu" }

// Supports returns nil: the cpu backend runs every valid problem (any page
// size, F32/BF16/F16 storage, any head dims).
func (cpuBackend) Supports(p *Problem) error { return nil }

// DefaultNumParts returns NumSMParts(4·GOMAXPROCS, SQ, HQ, h_kv) (see
// PartsAdvisor).
func (cpuBackend) DefaultNumParts(p *Problem) int { return goParts(p) }

// Decode runs p with schedule s; see Backend.
func (b cpuBackend) Decode(ctx context.Context, p *Problem, s *Schedule, out, lse []float32) error {
	p, err := p.onHost()
	if err != nil {
		return err
	}
	k := cpuKernel{ks: b.ks}
	if p.Rows() >= 4 {
		// Qᵀ of every (request, KV head), built once and shared by all the
		// pieces (splits) of that request.
		d, mp, hkv := p.Cache.HeadDim, (p.Rows()+15)&^15, p.HKV()
		k.qt = getFloats(p.B * hkv * d * mp)
		defer putFloats(k.qt)
		err := parallelFor(ctx, p.B*hkv, func() (func(int), func()) {
			return func(item int) {
				req, kvh := item/hkv, item%hkv
				transposeQ(p, req, kvh, mp, k.qt[item*d*mp:(item+1)*d*mp])
			}, func() {}
		})
		if err != nil {
			return err
		}
	}
	return runSchedule(ctx, p, s, out, lse, k)
}

// cpuKernel is the cpu backend's piece kernel; qt holds Qᵀ [B][h_kv][D][mp]
// (prescaled by scale·log2e, rows padded to mp with zeros) when the GEMM path
// is used, ks the kernel set.
type cpuKernel struct {
	qt []float32
	ks kernels.Set
}

// transposeQ writes Qᵀ [D][mp] of (req, kvh), prescaled by scale·log2e, into
// dst, 16 rows at a time so that each store run fills one cache line; rows
// past p.Rows() are zero.
func transposeQ(p *Problem, req, kvh, mp int, dst []float32) {
	rows, d, hpk := p.Rows(), p.Cache.HeadDim, p.HeadsPerKV()
	c := p.Scale * float32(Log2E)
	var src [16][]float32
	for m0 := 0; m0 < mp; m0 += 16 {
		for r := range 16 {
			src[r] = nil
			if m := m0 + r; m < rows {
				j, h := m/hpk, kvh*hpk+m%hpk
				src[r] = p.Q[((req*p.SQ+j)*p.HQ+h)*d:][:d]
			}
		}
		for i := range d {
			blk := dst[i*mp+m0 : i*mp+m0+16 : i*mp+m0+16]
			for r := range 16 {
				if src[r] != nil {
					blk[r] = src[r][i] * c
				} else {
					blk[r] = 0
				}
			}
		}
	}
}

type cpuScratch struct {
	ks        kernels.Set
	mp        int       // rows padded to 16
	q         []float32 // small path: Q [rows][D] prescaled by scale·log2e
	k         []float32 // [TileN][D] decoded keys (padded rows zero)
	st        []float32 // GEMM path: Sᵀ [TileN][mp]; small path: S [rows][TileN]
	o         []float32 // [mp][DV] running output
	mx, l     []float32 // [mp] running max (base 2) and sum
	nm, sh    []float32 // [mp] new max, exp2 shift
	vis       []int     // [rows] keys visible per row
	shN, accN []float32 // [TileN] small path
	offs      []int64   // [TileN] cache offsets of the tile's rows (small BF16 path)
	all       []float32 // the pooled buffer the float32 fields are carved from
}

func (k cpuKernel) newScratch(p *Problem) any {
	rows, d, dv := p.Rows(), p.Cache.HeadDim, p.HeadDimV
	mp := (rows + 15) &^ 15
	sizes := []int{min(rows, 3) * d, TileN * d, TileN * mp, mp * dv, mp, mp, mp, mp, TileN, TileN}
	all, part := getFloatParts(sizes)
	return &cpuScratch{
		ks: k.ks, mp: mp, q: part[0], k: part[1], st: part[2], o: part[3],
		mx: part[4], l: part[5], nm: part[6], sh: part[7], shN: part[8], accN: part[9],
		vis:  make([]int, rows),
		offs: make([]int64, TileN),
		all:  all,
	}
}

func (cpuKernel) release(scratch any) {
	putFloats(scratch.(*cpuScratch).all)
}

// gather decodes the cache rows of tokens [t0, t0+n) of request req, KV head
// kvh, into dst [n][D].
// softmaxTile runs one online-softmax step (base 2) over a tile of n keys:
// st is the tile's Sᵀ [n][mp] (log2-scaled scores, masked keys -Inf), k its
// keys [n][d] whose first dv columns are the values, o the running output
// [mp][dv], mx and l the running max and sum [mp], nm and sh [mp] scratch. It
// raises mx to the tile's max, rescales l and o by the change, turns st into
// exp2(st − max) adding each row's sum to l, and adds Pᵀ·V to o. A row with
// every key masked so far keeps its max -Inf and gets shift 0.
func softmaxTile(ks kernels.Set, n, mp, d, dv int, st, k, o, mx, l, nm, sh []float32) {
	copy(nm, mx)
	for i := range n {
		ks.MaxInto(nm, st[i*mp:(i+1)*mp])
	}
	for m := range mp {
		nmm := nm[m]
		if math.IsInf(float64(nmm), -1) {
			sh[m] = 0
			continue
		}
		sh[m] = nmm
		if alpha := kernels.Exp2(mx[m] - nmm); alpha != 1 {
			l[m] *= alpha
			ks.Scal(alpha, o[m*dv:(m+1)*dv])
		}
		mx[m] = nmm
	}
	for i := range n {
		ks.Exp2Sub(st[i*mp:(i+1)*mp], sh, l)
	}
	ks.Gemm(mp, dv, n, st, 1, mp, k, d, o, dv, true)
}

func gather(ks kernels.Set, p *Problem, req, kvh, t0, n int, dst []float32) {
	c, d := &p.host, p.Cache.HeadDim
	bt := p.BlockTable[req]
	page, slot := t0/c.PageSize, t0%c.PageSize
	for i := range n {
		blk, sl := int(bt[page]), slot
		off := c.Offset(blk, sl, kvh)
		if slot++; slot == c.PageSize {
			page, slot = page+1, 0
		}
		row := dst[i*d : (i+1)*d]
		switch c.DType {
		case tensor.E4M3T:
			dequantFast(ks, row, c.fp8.record(blk*c.PageSize+sl))
		case tensor.F32:
			copy(row, c.F32[off:off+d])
		case tensor.BF16T:
			ks.CvtBF16(row, c.BF16[off:off+d])
		case tensor.F16T:
			ks.CvtF16(row, c.F16[off:off+d])
		}
	}
}

var negInf = float32(math.Inf(-1))

func (k cpuKernel) run(scratch any, p *Problem, req, kvh, begin, end int, o, lse []float32) {
	s := scratch.(*cpuScratch)
	rows, d, dv, hpk, mp := p.Rows(), p.Cache.HeadDim, p.HeadDimV, p.HeadsPerKV(), s.mp
	small := rows < 4
	c := p.Scale * float32(Log2E)
	maxVis := 0
	qrow := func(m int) []float32 {
		j, h := m/hpk, kvh*hpk+m%hpk
		return p.Q[((req*p.SQ+j)*p.HQ+h)*d:][:d]
	}
	for m := range rows {
		s.vis[m] = p.Visible(req, m/hpk)
		maxVis = max(maxVis, s.vis[m])
		if small {
			qs := s.q[m*d : (m+1)*d]
			for i, v := range qrow(m) {
				qs[i] = v * c
			}
			if p.Cache.DType == tensor.BF16T {
				// The fused QK kernels read the query in their set's
				// channel order.
				s.ks.QKOrder(qs, qs)
			}
		}
	}
	qt := s.q
	if !small {
		qt = k.qt[(req*p.HKV()+kvh)*d*mp:][:d*mp]
	}
	for m := range mp {
		s.mx[m], s.l[m] = negInf, 0
	}
	if small {
		clear(s.o[:rows*dv])
	} else {
		clear(s.o)
	}
	end = min(end, maxVis) // keys no row sees are never read
	for t0 := begin; t0 < end; t0 += TileN {
		n := min(TileN, end-t0)
		if small && p.Cache.DType == tensor.BF16T {
			c, bt := p.Cache, p.BlockTable[req]
			page, slot := t0/c.PageSize, t0%c.PageSize
			for i := range n {
				s.offs[i] = int64(c.Offset(int(bt[page]), slot, kvh))
				if slot++; slot == c.PageSize {
					page, slot = page+1, 0
				}
			}
			s.smallTile(p, rows, d, dv, t0, n)
			continue
		}
		gather(s.ks, p, req, kvh, t0, n, s.k)
		if small {
			s.smallTile(nil, rows, d, dv, t0, n)
			continue
		}
		n8 := (n + 7) &^ 7
		clear(s.k[n*d : n8*d])
		s.ks.Gemm(n8, mp, d, s.k, d, 1, qt, mp, s.st, mp, false)
		for m := range rows {
			if v := s.vis[m]; v < t0+n {
				for i := max(v-t0, 0); i < n; i++ {
					s.st[i*mp+m] = negInf
				}
			}
		}
		softmaxTile(s.ks, n, mp, d, dv, s.st, s.k, s.o, s.mx, s.l, s.nm, s.sh)
	}
	for m := range rows {
		om, dst := s.o[m*dv:(m+1)*dv], o[m*dv:(m+1)*dv]
		if s.l[m] == 0 {
			clear(dst)
			lse[m] = negInf
			continue
		}
		inv := 1 / s.l[m]
		for i, v := range om {
			dst[i] = v * inv
		}
		lse[m] = float32((float64(s.mx[m]) + math.Log2(float64(s.l[m]))) * Ln2)
	}
}

// smallTile is the dot/axpy path for fewer than 4 rows per KV head. With
// bf16 set (a BF16 cache) it reads the rows in place through s.offs, two
// query rows per pass over the keys; otherwise it works on the decoded tile
// s.k. Phases: scores for every row, the online-softmax update per row, then
// P·V for every row.
func (s *cpuScratch) smallTile(bf16 *Problem, rows, d, dv, t0, n int) {
	// Rows past the last one that sees a key of this tile are skipped; rows
	// before it are computed and masked (a fully masked row keeps its state:
	// its P is 0).
	live := 0
	for m := range rows {
		if s.vis[m] > t0 {
			live = m + 1
		}
	}
	for m := 0; m < live; m++ {
		sr := s.st[m*TileN : m*TileN+n]
		switch {
		case bf16 != nil && m+1 < live:
			s.ks.QKBF16x2(s.q[m*d:(m+2)*d], d, bf16.host.BF16, s.offs[:n], s.st[m*TileN:], TileN)
			m++
		case bf16 != nil:
			s.ks.QKBF16(s.q[m*d:(m+1)*d], bf16.host.BF16, s.offs[:n], sr)
		default:
			for i := range n {
				sr[i] = s.ks.Dot(s.q[m*d:(m+1)*d], s.k[i*d:(i+1)*d])
			}
		}
	}
	for m := range live {
		sr := s.st[m*TileN : m*TileN+n]
		lim := s.vis[m] - t0
		nm := s.mx[m]
		for i := range sr {
			if i >= lim {
				sr[i] = negInf
			}
			nm = max(nm, sr[i])
		}
		if math.IsInf(float64(nm), -1) { // no key yet: P = 0
			clear(sr)
			continue
		}
		if alpha := kernels.Exp2(s.mx[m] - nm); alpha != 1 {
			s.l[m] *= alpha
			s.ks.Scal(alpha, s.o[m*dv:(m+1)*dv])
		}
		s.mx[m] = nm
		sh, acc := s.shN[:n], s.accN[:n]
		for i := range sh {
			sh[i], acc[i] = nm, 0
		}
		s.ks.Exp2Sub(sr, sh, acc)
		for _, a := range acc {
			s.l[m] += a
		}
	}
	for m := 0; m < live; m++ {
		sr, om := s.st[m*TileN:m*TileN+n], s.o[m*dv:(m+1)*dv]
		switch {
		case bf16 != nil && m+1 < live:
			s.ks.PVBF16x2(s.o[m*dv:(m+2)*dv], dv, s.st[m*TileN:], TileN, bf16.host.BF16, s.offs[:n])
			m++
		case bf16 != nil:
			s.ks.PVBF16(om, sr, bf16.host.BF16, s.offs[:n])
		default:
			for i, pv := range sr {
				if pv != 0 {
					s.ks.Axpy(pv, s.k[i*d:i*d+dv], om)
				}
			}
		}
	}
}
