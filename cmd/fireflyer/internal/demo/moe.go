package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Placement is the EPLB plan of one layer as the MoE step uses it: P
// physical expert slots over R ranks (P/R each), the logical expert of each
// slot, and the slots of each logical expert.
type Placement struct {
	P, R    int
	Phy2Log []int   // [P]
	Log2Phy [][]int // [E][replicas of e]
}

// Local returns the number of physical experts per rank.
func (p *Placement) Local() int { return p.P / p.R }

// Replica picks the physical slot that token t, living on rank `rank`,
// sends to for logical expert e: the first replica on its own rank if there
// is one, else replica t mod (number of replicas). The rule is
// deterministic and spreads a popular expert's tokens over its replicas.
func (p *Placement) Replica(e, t, rank int) int {
	reps := p.Log2Phy[e]
	for _, s := range reps {
		if s/p.Local() == rank {
			return s
		}
	}
	return reps[t%len(reps)]
}

// rankExperts are one rank's expert weights, stacked for the masked grouped
// GEMMs: GateUp [local, 2·inter, hidden] and Down [local, hidden, inter].
type rankExperts struct {
	GateUp, Down *tensor.FP8Matrix
}

// stackExperts builds every rank's stacked expert weights from the logical
// experts' fused gate/up and down operands.
func stackExperts(pl *Placement, gu, down []*tensor.FP8Matrix) ([]rankExperts, error) {
	out := make([]rankExperts, pl.R)
	for r := range out {
		var g, d []*tensor.FP8Matrix
		for s := r * pl.Local(); s < (r+1)*pl.Local(); s++ {
			g = append(g, gu[pl.Phy2Log[s]])
			d = append(d, down[pl.Phy2Log[s]])
		}
		var err error
		if out[r].GateUp, err = tensor.Stack(g...); err != nil {
			return nil, err
		}
		if out[r].Down, err = tensor.Stack(d...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rankStats are one rank's phase times and traffic in the MoE step.
type rankStats struct {
	Dispatch, Experts, Combine  time.Duration
	DispatchBytes, CombineBytes int64
	ExpertFLOPs                 int64
	ExpertsStart                int64 // wall clock (Unix ns) when the expert GEMMs began; with Experts, the phase's span across ranks
}

// rankMoE runs the routed experts of one rank's tokens over an ep.Buffer:
// low-latency dispatch with FP8 quantization on the way (per token and 128
// channels), the masked grouped FP8 GEMMs of the local experts (fused
// gate/up, SiLU⊙up, per-token quantization, down), and the weighted
// low-latency combine. x [N, hidden] BF16; topkIdx [N, K] physical slots;
// weights [N, K]. It returns the combined [N, hidden] BF16 rows.
func rankMoE(ctx context.Context, b *ep.Buffer, be gemm.Backend, ex rankExperts, hidden int, x []tensor.BF16, n int,
	topkIdx []int32, weights []float32, k int) ([]tensor.BF16, rankStats, error) {
	var st rankStats
	topk := ep.TopK{K: k, Idx: topkIdx, Weights: weights}
	t0 := time.Now()
	res, err := b.LowLatencyDispatch(ctx, ep.Tokens{N: n, Hidden: hidden, BF16: x}, topk, ep.LowLatencyOptions{UseFP8: true})
	if err != nil {
		return nil, st, fmt.Errorf("dispatch: %w", err)
	}
	st.Dispatch = time.Since(t0)
	local := len(res.Count)
	rowsPer := len(res.SrcInfo) / max(1, local) // R·M
	var recv int64
	for _, c := range res.Count {
		recv += int64(c)
	}
	st.DispatchBytes = recv * int64(hidden+4*ep.NumScales(hidden))
	st.CombineBytes = recv * int64(2*hidden)

	t1 := time.Now()
	st.ExpertsStart = t1.UnixNano()
	a, err := res.FP8() // [local experts, R·M rows, hidden], 1×128 scales
	if err != nil {
		return nil, st, fmt.Errorf("dispatch: %w", err)
	}
	inter := ex.GateUp.Rows / 2
	gu := make([]float32, local*rowsPer*2*inter)
	expected := int(recv) / max(1, local)
	if err := gemm.GroupedMaskedNT(ctx, be, a, ex.GateUp, &gemm.Out{Rows: local * rowsPer, Cols: 2 * inter, F32: tensor.HostOf(gu)}, res.Count, expected); err != nil {
		return nil, st, fmt.Errorf("expert gate/up GEMM: %w", err)
	}
	act := make([]float32, local*rowsPer*inter)
	for g := 0; g < local; g++ {
		c := int(res.Count[g])
		dsv3.SwiGLU(gu[g*rowsPer*2*inter:], c, inter, act[g*rowsPer*inter:])
	}
	a2, err := tensor.QuantizePerToken(act, local*rowsPer, inter, tensor.QuantOptions{})
	if err != nil {
		return nil, st, err
	}
	if a2, err = a2.Regroup(local); err != nil {
		return nil, st, err
	}
	y := make([]tensor.BF16, local*rowsPer*hidden)
	if err := gemm.GroupedMaskedNT(ctx, be, a2, ex.Down, &gemm.Out{Rows: local * rowsPer, Cols: hidden, BF16: tensor.HostOf(y)}, res.Count, expected); err != nil {
		return nil, st, fmt.Errorf("expert down GEMM: %w", err)
	}
	st.ExpertFLOPs = 2 * recv * int64(3*inter*hidden)
	st.Experts = time.Since(t1)

	t2 := time.Now()
	comb, err := b.LowLatencyCombine(ctx, y, topk, res.Handle, ep.LowLatencyCombineOptions{})
	if err != nil {
		return nil, st, fmt.Errorf("combine: %w", err)
	}
	st.Combine = time.Since(t2)
	return comb.X, st, nil
}
