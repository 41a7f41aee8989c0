package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// gemmCase is one FP8 GEMM problem: the unquantized inputs and their
// DeepGEMM-style quantization (per-token 1x128 for A, 128x128 for B).
type gemmCase struct {
	M, N, K int
	x, w    []float32 // [M, K], [N, K]
	a, b    []tensor.E4M3
	sa, sb  []float32 // [M, KB], [ceil(N/128), KB]
}

func newGemmCase(r *rand.Rand, m, n, k int) *gemmCase {
	c := &gemmCase{M: m, N: n, K: k, x: testutil.Normal(r, m*k, 0, 1), w: testutil.Normal(r, n*k, 0, 1)}
	c.a, c.sa = quantPerToken(c.x, m, k)
	c.b, c.sb = quantPerBlock(c.w, n, k)
	return c
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// quantPerToken mirrors DeepGEMM's per_token_cast_to_fp8: each row's
// 128-wide K block scaled by amax/448 (amax clamped to 1e-4).
func quantPerToken(x []float32, m, k int) ([]tensor.E4M3, []float32) {
	kb := ceilDiv(k, ScaleBlock)
	q := make([]tensor.E4M3, m*k)
	s := make([]float32, m*kb)
	for i := range m {
		for b := range kb {
			lo, hi := b*ScaleBlock, min(k, (b+1)*ScaleBlock)
			amax := float32(1e-4)
			for j := lo; j < hi; j++ {
				amax = max(amax, float32(math.Abs(float64(x[i*k+j]))))
			}
			for j := lo; j < hi; j++ {
				q[i*k+j] = tensor.E4M3FromFloat32(x[i*k+j] * (tensor.E4M3Max / amax))
			}
			s[i*kb+b] = amax / tensor.E4M3Max
		}
	}
	return q, s
}

// quantPerBlock mirrors DeepGEMM's per_block_cast_to_fp8: one scale per
// 128x128 block of B.
func quantPerBlock(w []float32, n, k int) ([]tensor.E4M3, []float32) {
	kb, nb := ceilDiv(k, ScaleBlock), ceilDiv(n, ScaleBlock)
	q := make([]tensor.E4M3, n*k)
	s := make([]float32, nb*kb)
	for bn := range nb {
		for bk := range kb {
			amax := float32(1e-4)
			for i := bn * ScaleBlock; i < min(n, (bn+1)*ScaleBlock); i++ {
				for j := bk * ScaleBlock; j < min(k, (bk+1)*ScaleBlock); j++ {
					amax = max(amax, float32(math.Abs(float64(w[i*k+j]))))
				}
			}
			for i := bn * ScaleBlock; i < min(n, (bn+1)*ScaleBlock); i++ {
				for j := bk * ScaleBlock; j < min(k, (bk+1)*ScaleBlock); j++ {
					q[i*k+j] = tensor.E4M3FromFloat32(w[i*k+j] * (tensor.E4M3Max / amax))
				}
			}
			s[bn*kb+bk] = amax / tensor.E4M3Max
		}
	}
	return q, s
}

// parallelRows runs f(i) for i in [0, n) on all CPUs.
func parallelRows(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// refExact is D in float64 from the dequantized operands, with the
// kernel's formula: Σ_kb sa·sb·Σ_k a·b.
func (c *gemmCase) refExact() []float64 {
	kb := ceilDiv(c.K, ScaleBlock)
	a := make([]float64, len(c.a))
	b := make([]float64, len(c.b))
	for i, v := range c.a {
		a[i] = float64(v.Float32())
	}
	for i, v := range c.b {
		b[i] = float64(v.Float32())
	}
	d := make([]float64, c.M*c.N)
	parallelRows(c.M, func(i int) {
		for j := range c.N {
			var acc float64
			for blk := range kb {
				var part float64
				for k := blk * ScaleBlock; k < min(c.K, (blk+1)*ScaleBlock); k++ {
					part += a[i*c.K+k] * b[j*c.K+k]
				}
				acc += part * float64(c.sa[i*kb+blk]) * float64(c.sb[(j/ScaleBlock)*kb+blk])
			}
			d[i*c.N+j] = acc
		}
	})
	return d
}

// refUnquantized is x·wᵀ in float64 from the unquantized inputs.
func (c *gemmCase) refUnquantized() []float64 {
	d := make([]float64, c.M*c.N)
	parallelRows(c.M, func(i int) {
		for j := range c.N {
			var acc float64
			for k := range c.K {
				acc += float64(c.x[i*c.K+k]) * float64(c.w[j*c.K+k])
			}
			d[i*c.N+j] = acc
		}
	})
	return d
}

// mlaCase is one MLA decode problem over a paged cache.
type mlaCase struct {
	B, SQ, HQ, MaxPages, Pages int
	Seqlens                    []int32
	BlockTable                 []int32 // [B, MaxPages]
	Q                          []tensor.BF16
	KV                         []tensor.BF16 // [Pages, 64, 576]
	Scale                      float32
	Causal                     bool
}

func newMLACase(r *rand.Rand, seqlens []int32, sq, hq int, causal bool) *mlaCase {
	c := &mlaCase{B: len(seqlens), SQ: sq, HQ: hq, Seqlens: seqlens, Causal: causal,
		Scale: float32(1 / math.Sqrt(MLAHeadDimQK))}
	for _, s := range seqlens {
		c.MaxPages = max(c.MaxPages, ceilDiv(int(s), MLAPageSize))
	}
	c.MaxPages = max(c.MaxPages, 1)
	c.Pages = c.B * c.MaxPages
	perm := r.Perm(c.Pages) // pages scattered through the cache
	c.BlockTable = make([]int32, c.B*c.MaxPages)
	for i := range c.BlockTable {
		c.BlockTable[i] = int32(perm[i])
	}
	c.Q = make([]tensor.BF16, c.B*sq*hq*MLAHeadDimQK)
	tensor.EncodeBF16(c.Q, testutil.Normal(r, len(c.Q), 0, 1))
	c.KV = make([]tensor.BF16, c.Pages*MLAPageSize*MLAHeadDimQK)
	tensor.EncodeBF16(c.KV, testutil.Normal(r, len(c.KV), 0, 1))
	return c
}

// ref returns out [B, SQ, HQ, 512] and lse [B, HQ, SQ] in float64 from the
// BF16 inputs (lse -Inf and out 0 for a row without keys).
func (c *mlaCase) ref() (out, lse []float64) {
	rows := c.SQ * c.HQ
	out = make([]float64, c.B*rows*MLAHeadDimV)
	lse = make([]float64, c.B*c.HQ*c.SQ)
	parallelRows(c.B*rows, func(br int) {
		b, row := br/rows, br%rows
		sq, h := row/c.HQ, row%c.HQ
		n := int(c.Seqlens[b])
		if c.Causal {
			n -= c.SQ - 1 - sq
		}
		q := c.Q[(b*rows+row)*MLAHeadDimQK:][:MLAHeadDimQK]
		key := func(t int) []tensor.BF16 {
			page := int(c.BlockTable[b*c.MaxPages+t/MLAPageSize])
			return c.KV[(page*MLAPageSize+t%MLAPageSize)*MLAHeadDimQK:][:MLAHeadDimQK]
		}
		s := make([]float64, max(n, 0))
		mx := math.Inf(-1)
		for t := range s {
			k := key(t)
			var dot float64
			for d := range MLAHeadDimQK {
				dot += float64(q[d].Float32()) * float64(k[d].Float32())
			}
			s[t] = dot * float64(c.Scale)
			mx = max(mx, s[t])
		}
		o := out[(b*rows+row)*MLAHeadDimV:][:MLAHeadDimV]
		li := (b*c.HQ+h)*c.SQ + sq
		if len(s) == 0 {
			lse[li] = math.Inf(1) // FlashMLA: a row that sees no key has lse = +Inf and out = 0
			return
		}
		var sum float64
		for t := range s {
			p := math.Exp(s[t] - mx)
			sum += p
			k := key(t)
			for d := range MLAHeadDimV {
				o[d] += p * float64(k[d].Float32())
			}
		}
		for d := range o {
			o[d] /= sum
		}
		lse[li] = mx + math.Log(sum)
	})
	return out, lse
}
