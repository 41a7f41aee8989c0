package oracle

import (
	"context"

	"github.com/fireflyer-go/fireflyer/internal/anchor"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Bytes returns the case's memory traffic as FlashMLA's test counts it:
// (Σ L_i·h_kv·HeadDim + b·s_q·h_q·(HeadDim+HeadDimV)) × element size (the
// cache's; queries and outputs are counted at the same size, as upstream
// does with bf16 q and out). For the FP8 storage kind each token is its
// 656-byte record and q and out count as bf16.
func (in *Input) Bytes() float64 {
	c := in.Case
	var s float64
	for _, l := range in.Seqlens {
		s += float64(l)
	}
	if c.DType == tensor.E4M3T {
		return s*mla.FP8BytesPerToken + float64(c.B*c.SQ*c.HQ*(c.HeadDim+c.HeadDimV))*2
	}
	return (s*float64(c.HKV*c.HeadDim) + float64(c.B*c.SQ*c.HQ*(c.HeadDim+c.HeadDimV))) * float64(c.DType.Size())
}

// Measurement is one benchmark result: the decode's rates as FlashMLA
// counts them and its ratios to the anchors measured in the same run.
type Measurement struct {
	Case          string  `json:"case"`
	Backend       string  `json:"backend"`
	Seconds       float64 `json:"seconds"`
	GFLOPs        float64 `json:"gflop_per_s"`
	GBs           float64 `json:"gb_per_s"`
	GEMMGFLOPs    float64 `json:"gemm_gflop_per_s"`
	MemcpyGBs     float64 `json:"memcpy_gb_per_s"`
	RatioGEMM     float64 `json:"x_gemm"`
	RatioMemcpy   float64 `json:"x_memcpy"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Kernels       string  `json:"kernels"`
	Repetitions   int     `json:"reps"`
	AnchorRounds  int     `json:"rounds"`
	ScheduleParts int     `json:"parts"`
}

// Measure times be on the case against the anchors — anchor.GEMM on an
// equal-FLOP GEMM (on be's own kernel set when be names one, as the cpu
// backend does, so that a backend from mla.NewCPU on a lower set is
// compared with that set) and anchor.Memcpy over the same bytes —
// alternating one
// run of each for rounds rounds (after one warm-up run of each) and keeping
// each one's minimum, so that all three see the same spells of interference
// on a shared machine. reps > 1 repeats each timed run reps times per round.
func Measure(be mla.Backend, c Case, reps, rounds int) (Measurement, error) {
	in, err := c.Build()
	if err != nil {
		return Measurement{}, err
	}
	c = in.Case
	parts := c.NumParts
	if parts == 0 {
		p, err := mla.NewProblem(in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts)
		if err != nil {
			return Measurement{}, err
		}
		parts = mla.DefaultNumParts(be, p)
	}
	s, err := mla.Plan(in.Seqlens, parts)
	if err != nil {
		return Measurement{}, err
	}
	opts := in.Opts
	opts.Schedule = s
	var runErr error
	run := func() {
		if _, _, err := mla.Decode(context.Background(), be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &opts); err != nil && runErr == nil {
			runErr = err
		}
	}
	flops, bytes := in.FLOPs(), in.Bytes()
	gemm := anchor.GEMMOn(kernelsOf(be), c.B*c.SQ*c.HQ, max(c.SK, 1), c.HeadDim+c.HeadDimV)
	mem := anchor.Memcpy(int(bytes))
	best := anchor.Alternate(rounds, reps, run, gemm, mem)
	t, tg, tm := best[0], best[1], best[2]
	if runErr != nil {
		return Measurement{}, runErr
	}
	m := measurement(c.Name(), be.Name(), kernelsOf(be), t, tg, tm, flops, bytes, reps, rounds)
	m.ScheduleParts = parts
	return m, nil
}

// kernelsOf names be's kernel set (the cpu backend's Kernels method), or
// that of mla.Default() for a backend that names none.
func kernelsOf(be mla.Backend) string {
	type kerneled interface{ Kernels() string }
	if k, ok := be.(kerneled); ok {
		return k.Kernels()
	}
	if k, ok := mla.Default().(kerneled); ok {
		return k.Kernels()
	}
	return "go"
}
