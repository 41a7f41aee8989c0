package mla

import (
	"context"
	"math"

	"github.com/fireflyer-go/fireflyer/internal/mla/kern"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// CPU is the "cpu" backend, the default: the fast Go implementation.
//
// It runs the schedule's (request, KV head, split) units on up to GOMAXPROCS
// goroutines. Within a unit it walks the keys in tiles of TileN tokens: each
// tile's cache rows are decoded to float32 once and shared by all the
// SQ·HQ/h_kv query rows of that KV head (128 for DeepSeek-V3), Sᵀ = K·(scale·
// log2e·Q)ᵀ and O += P·V run as register-blocked GEMMs (AVX-512 assembly
// where available), and the online softmax works in base 2. Keys a row may
// not see get P = 0 and slots past a sequence are never read. With fewer than
// 4 rows per KV head (h_q = 1) it uses dot/axpy kernels instead, as the
// problem is then bandwidth-bound. It supports every problem NewProblem
// accepts.
var CPU Backend = cpuBackend{}

// TileN is the number of keys the cpu backend decodes and multiplies at a
// time.
const TileN = 64

type cpuBackend struct{}

// Name returns "cpu".
func (cpuBackend) Name() string { return "cpu" }

// Supports returns nil: the cpu backend runs every valid problem (any page
// size, F32/BF16/F16 storage, any head dims).
func (cpuBackend) Supports(p *Problem) error { return nil }

// Decode runs p with schedule s; see Backend.
func (cpuBackend) Decode(ctx context.Context, p *Problem, s *Schedule, out, lse []float32) error {
	return runSchedule(ctx, p, s, out, lse, cpuKernel{})
}

type cpuKernel struct{}

type cpuScratch struct {
	mp        int       // rows padded to 16
	q         []float32 // GEMM path: Qᵀ [D][mp]; small path: Q [rows][D]; prescaled by scale·log2e
	k         []float32 // [TileN][D] decoded keys (padded rows zero)
	st        []float32 // GEMM path: Sᵀ [TileN][mp]; small path: S [rows][TileN]
	o         []float32 // [mp][DV] running output
	mx, l     []float32 // [mp] running max (base 2) and sum
	nm, sh    []float32 // [mp] new max, exp2 shift
	vis       []int     // [rows] keys visible per row
	shN, accN []float32 // [TileN] small path
	offs      []int64   // [TileN] cache offsets of the tile's rows (small BF16 path)
}

func (cpuKernel) newScratch(p *Problem) any {
	rows, d, dv := p.Rows(), p.Cache.HeadDim, p.HeadDimV
	mp := (rows + 15) &^ 15
	return &cpuScratch{
		mp:  mp,
		q:   make([]float32, d*mp),
		k:   make([]float32, TileN*d),
		st:  make([]float32, TileN*mp),
		o:   make([]float32, mp*dv),
		mx:  make([]float32, mp),
		l:   make([]float32, mp),
		nm:  make([]float32, mp),
		sh:  make([]float32, mp),
		vis: make([]int, rows),
		shN: make([]float32, TileN), accN: make([]float32, TileN),
		offs: make([]int64, TileN),
	}
}

// gather decodes the cache rows of tokens [t0, t0+n) of request req, KV head
// kvh, into dst [n][D].
func gather(p *Problem, req, kvh, t0, n int, dst []float32) {
	c, d := p.Cache, p.Cache.HeadDim
	bt := p.BlockTable[req]
	page, slot := t0/c.PageSize, t0%c.PageSize
	for i := range n {
		off := c.Offset(int(bt[page]), slot, kvh)
		if slot++; slot == c.PageSize {
			page, slot = page+1, 0
		}
		row := dst[i*d : (i+1)*d]
		switch c.DType {
		case tensor.F32:
			copy(row, c.F32[off:off+d])
		case tensor.BF16T:
			kern.CvtBF16(row, c.BF16[off:off+d])
		case tensor.F16T:
			kern.CvtF16(row, c.F16[off:off+d])
		}
	}
}

var negInf = float32(math.Inf(-1))

func (cpuKernel) run(scratch any, p *Problem, req, kvh, begin, end int, o, lse []float32) {
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
		}
	}
	if !small {
		// Qᵀ [d][mp], transposed 16 rows at a time so that each store run
		// fills one cache line; rows past `rows` are zero.
		var src [16][]float32
		for m0 := 0; m0 < mp; m0 += 16 {
			for r := range 16 {
				src[r] = nil
				if m0+r < rows {
					src[r] = qrow(m0 + r)
				}
			}
			for i := range d {
				dst := s.q[i*mp+m0 : i*mp+m0+16 : i*mp+m0+16]
				for r := range 16 {
					if src[r] != nil {
						dst[r] = src[r][i] * c
					} else {
						dst[r] = 0
					}
				}
			}
		}
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
		gather(p, req, kvh, t0, n, s.k)
		if small {
			s.smallTile(nil, rows, d, dv, t0, n)
			continue
		}
		n8 := (n + 7) &^ 7
		clear(s.k[n*d : n8*d])
		kern.Gemm(n8, mp, d, s.k, d, 1, s.q, mp, s.st, mp, false)
		for m := range rows {
			if v := s.vis[m]; v < t0+n {
				for i := max(v-t0, 0); i < n; i++ {
					s.st[i*mp+m] = negInf
				}
			}
		}
		copy(s.nm, s.mx)
		for i := range n {
			kern.MaxInto(s.nm, s.st[i*mp:(i+1)*mp])
		}
		for m := range mp {
			nm := s.nm[m]
			if math.IsInf(float64(nm), -1) {
				s.sh[m] = 0
				continue
			}
			s.sh[m] = nm
			if alpha := kern.Exp2(s.mx[m] - nm); alpha != 1 {
				s.l[m] *= alpha
				kern.Scal(alpha, s.o[m*dv:(m+1)*dv])
			}
			s.mx[m] = nm
		}
		for i := range n {
			kern.Exp2Sub(s.st[i*mp:(i+1)*mp], s.sh, s.l)
		}
		kern.Gemm(mp, dv, n, s.st, 1, mp, s.k, d, s.o, dv, true)
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
			kern.QKBF16x2(s.q[m*d:(m+2)*d], d, bf16.Cache.BF16, s.offs[:n], s.st[m*TileN:], TileN)
			m++
		case bf16 != nil:
			kern.QKBF16(s.q[m*d:(m+1)*d], bf16.Cache.BF16, s.offs[:n], sr)
		default:
			for i := range n {
				sr[i] = kern.Dot(s.q[m*d:(m+1)*d], s.k[i*d:(i+1)*d])
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
		if alpha := kern.Exp2(s.mx[m] - nm); alpha != 1 {
			s.l[m] *= alpha
			kern.Scal(alpha, s.o[m*dv:(m+1)*dv])
		}
		s.mx[m] = nm
		sh, acc := s.shN[:n], s.accN[:n]
		for i := range sh {
			sh[i], acc[i] = nm, 0
		}
		kern.Exp2Sub(sr, sh, acc)
		for _, a := range acc {
			s.l[m] += a
		}
	}
	for m := 0; m < live; m++ {
		sr, om := s.st[m*TileN:m*TileN+n], s.o[m*dv:(m+1)*dv]
		switch {
		case bf16 != nil && m+1 < live:
			kern.PVBF16x2(s.o[m*dv:(m+2)*dv], dv, s.st[m*TileN:], TileN, bf16.Cache.BF16, s.offs[:n])
			m++
		case bf16 != nil:
			kern.PVBF16(om, sr, bf16.Cache.BF16, s.offs[:n])
		default:
			for i, pv := range sr {
				if pv != 0 {
					kern.Axpy(pv, s.k[i*d:i*d+dv], om)
				}
			}
		}
	}
}
