package oracle

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// UnusedBlockID is what upstream's test writes into block-table entries a
// request does not use (2147480000); a backend that reads one fails.
const UnusedBlockID = 2147480000

// Case is one decode problem of the grid. Zero HeadDim/HeadDimV mean 576/512,
// zero PageSize means 64, an invalid DType means BF16 (tensor.E4M3T is the
// V3.2 FP8 storage kind, h_kv 1 and head dim 576 only), zero Scale means
// DeepSeek-V3's scale, zero NumParts means the default schedule.
type Case struct {
	B, SQ, HQ, HKV int
	SK             int  // mean cache length
	Varlen         bool // lengths drawn from max(N(SK, SK/2), 0) instead of all SK
	ZeroHalf       bool // every other request has length 0
	Causal         bool
	PageSize       int
	DType          tensor.DType
	HeadDim        int
	HeadDimV       int
	Scale          float32
	Std            float64 // q and cache ~ N(0, Std²) clamped to ±1 (0 means 0.1, upstream's randn/10)
	NumParts       int
	Seed           uint64
}

// Name returns a readable, unique test name, e.g.
// "b2_sq1_sk140_hq64_hkv1_causal_varlen_p64_BF16".
func (c Case) Name() string {
	c = c.WithDefaults()
	n := fmt.Sprintf("b%d_sq%d_sk%d_hq%d_hkv%d", c.B, c.SQ, c.SK, c.HQ, c.HKV)
	if c.Causal {
		n += "_causal"
	}
	if c.Varlen {
		n += "_varlen"
	}
	if c.ZeroHalf {
		n += "_zerohalf"
	}
	n += fmt.Sprintf("_p%d_%v", c.PageSize, c.DType)
	if c.HeadDim != mla.HeadDim || c.HeadDimV != mla.HeadDimV {
		n += fmt.Sprintf("_d%d_dv%d", c.HeadDim, c.HeadDimV)
	}
	if c.NumParts != 0 {
		n += fmt.Sprintf("_parts%d", c.NumParts)
	}
	return n
}

// WithDefaults returns c with its zero fields set to FlashMLA's test
// defaults: head dims 576/512 (d_v capped at d_qk), page size 64, a BF16
// cache, DeepSeek-V3's softmax scale and inputs of standard deviation 0.1.
func (c Case) WithDefaults() Case {
	if c.HeadDim == 0 {
		c.HeadDim = mla.HeadDim
	}
	if c.HeadDimV == 0 {
		c.HeadDimV = min(mla.HeadDimV, c.HeadDim)
	}
	if c.PageSize == 0 {
		c.PageSize = mla.UpstreamPageSize
	}
	if c.DType == tensor.Invalid {
		c.DType = tensor.BF16T
	}
	if c.Scale == 0 {
		c.Scale = mla.DeepSeekV3Scale
	}
	if c.Std == 0 {
		c.Std = 0.1
	}
	return c
}

// Input is a built case: the arguments of mla.Decode.
type Input struct {
	Case       Case
	Q          mla.Query
	Cache      *mla.PagedCache
	BlockTable [][]int32
	Seqlens    []int32
	Opts       mla.Options
}

// Build makes the case's input deterministically from its Seed: lengths,
// a cache whose blocks are a random permutation (plus spare blocks), every
// slot NaN except the live rows, unused block-table entries UnusedBlockID.
func (c Case) Build() (*Input, error) {
	c = c.WithDefaults()
	r := testutil.RNG(c.Seed ^ uint64(c.B*1_000_003+c.SQ*10_007+c.HQ*101+c.SK))
	seqlens := make([]int32, c.B)
	for i := range seqlens {
		l := c.SK
		if c.Varlen {
			l = max(int(math.Round(float64(c.SK)+float64(c.SK)/2*r.NormFloat64())), 0)
		}
		if c.ZeroHalf && i%2 == 0 {
			l = 0
		}
		seqlens[i] = int32(l)
	}
	maxBlocks, total := 0, 0
	for _, l := range seqlens {
		nb := (int(l) + c.PageSize - 1) / c.PageSize
		maxBlocks = max(maxBlocks, nb)
		total += nb
	}
	numBlocks := total + 3
	var cache *mla.PagedCache
	var err error
	if c.DType == tensor.E4M3T {
		// The V3.2 FP8 storage kind: rows are quantized by SetRow, and the
		// oracle reads them back dequantized through Row.
		if c.HKV != 1 || c.HeadDim != mla.HeadDim {
			return nil, fmt.Errorf("case %s: the FP8 cache needs h_kv 1 and head dim %d", c.Name(), mla.HeadDim)
		}
		cache, err = mla.NewFP8PagedCache(numBlocks, c.PageSize)
	} else {
		cache, err = mla.NewPagedCache(c.DType, numBlocks, c.PageSize, c.HKV, c.HeadDim)
	}
	if err != nil {
		return nil, err
	}
	if err := cache.Fill(float32(math.NaN())); err != nil {
		return nil, err
	}
	perm := r.Perm(numBlocks)
	bt := make([][]int32, c.B)
	row := make([]float32, c.HeadDim)
	next := 0
	for i, l := range seqlens {
		bt[i] = make([]int32, maxBlocks+1)
		for k := range bt[i] {
			bt[i][k] = UnusedBlockID
		}
		nb := (int(l) + c.PageSize - 1) / c.PageSize
		for k := range nb {
			bt[i][k] = int32(perm[next])
			next++
		}
		for t := range int(l) {
			for h := range c.HKV {
				fillNormal(r, row, c.Std)
				if err := cache.SetRow(int(bt[i][t/c.PageSize]), t%c.PageSize, h, row); err != nil {
					return nil, err
				}
			}
		}
	}
	q := make([]float32, c.B*c.SQ*c.HQ*c.HeadDim)
	fillNormal(r, q, c.Std)
	return &Input{
		Case:       c,
		Q:          mla.Query{Data: q, B: c.B, SQ: c.SQ, HQ: c.HQ},
		Cache:      cache,
		BlockTable: bt,
		Seqlens:    seqlens,
		Opts:       mla.Options{HeadDimV: c.HeadDimV, Scale: c.Scale, Causal: c.Causal, NumParts: c.NumParts},
	}, nil
}

func fillNormal(r *rand.Rand, x []float32, std float64) {
	for i := range x {
		x[i] = float32(max(-1, min(1, std*r.NormFloat64())))
	}
}

// FLOPs returns the case's work as upstream counts it, 2·Σ_i s_q·h_q·L_i·
// (HeadDim+HeadDimV) (the causal saving ignored).
func (in *Input) FLOPs() float64 {
	c := in.Case
	var s float64
	for _, l := range in.Seqlens {
		s += float64(l)
	}
	return 2 * float64(c.SQ*c.HQ) * s * float64(c.HeadDim+c.HeadDimV)
}
