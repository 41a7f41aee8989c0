package ep_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestIndependentOracle recomputes, without the conformance package, normal
// dispatch (received order by source rank then token, local ids, weights
// zeroed for other ranks' experts), the unweighted per-rank combine sum,
// and the weighted low-latency combine that skips −1 slots even when their
// weight is not zero, with a rank of zero tokens, a row of all −1 and a
// hidden size that is not a multiple of 128.
func TestIndependentOracle(t *testing.T) {
	const R, E, H, K = 3, 6, 130, 3
	ns := []int{5, 0, 7}
	el := E / R
	xs := make([][]float32, R)
	idxs := make([][]int32, R)
	ws := make([][]float32, R)
	rng := rand.New(rand.NewPCG(1, 2))
	for r := 0; r < R; r++ {
		xs[r] = make([]float32, ns[r]*H)
		for i := range xs[r] {
			xs[r][i] = tensor.BF16FromFloat32(float32(rng.NormFloat64())).Float32()
		}
		idxs[r] = make([]int32, ns[r]*K)
		ws[r] = make([]float32, ns[r]*K)
		for tk := 0; tk < ns[r]; tk++ {
			perm := rng.Perm(E)
			for j := 0; j < K; j++ {
				idxs[r][tk*K+j] = int32(perm[j])
				if rng.IntN(3) == 0 || tk == 1 {
					idxs[r][tk*K+j] = -1
				}
				ws[r][tk*K+j] = float32(rng.IntN(4)+1) / 4
			}
		}
	}
	bf := func(f []float32) []tensor.BF16 {
		o := make([]tensor.BF16, len(f))
		for i, v := range f {
			o[i] = tensor.BF16FromFloat32(v)
		}
		return o
	}
	maxRows := 0
	for _, n := range ns {
		maxRows += n
	}
	cfg := &ep.LowLatencyConfig{MaxTokensPerRank: 8, Hidden: H, NumExperts: E, MaxTopK: K}
	err := inproc.RunBuffers(context.Background(), R, ep.Options{NormalBytes: ep.NormalSizeHint(maxRows, H, K), LowLatency: cfg}, func(ctx context.Context, b *ep.Buffer) error {
		me := b.Rank()
		n := ns[me]
		tk := &ep.TopK{K: K, Idx: idxs[me], Weights: ws[me]}
		res, err := b.Dispatch(ctx, ep.Tokens{N: n, Hidden: H, BF16: bf(xs[me])}, tk, ep.DispatchOptions{NumExperts: E})
		if err != nil {
			return err
		}
		// oracle received order
		row := 0
		for s := 0; s < R; s++ {
			for tok := 0; tok < ns[s]; tok++ {
				in := false
				for j := 0; j < K; j++ {
					if e := idxs[s][tok*K+j]; e >= 0 && int(e)/el == me {
						in = true
					}
				}
				if !in {
					continue
				}
				if row >= res.X.N {
					return fmt.Errorf("rank %d: too few rows", me)
				}
				for c := 0; c < H; c++ {
					if res.X.BF16[row*H+c].Float32() != xs[s][tok*H+c] {
						return fmt.Errorf("rank %d row %d: wrong data (want src %d tok %d)", me, row, s, tok)
					}
				}
				for j := 0; j < K; j++ {
					e := idxs[s][tok*K+j]
					wl, ww := int32(-1), float32(0)
					if e >= 0 && int(e)/el == me {
						wl, ww = e-int32(me*el), ws[s][tok*K+j]
					}
					if res.TopKIdx[row*K+j] != wl || res.Weights[row*K+j] != ww {
						return fmt.Errorf("rank %d row %d slot %d: idx %d w %v, want %d %v", me, row, j, res.TopKIdx[row*K+j], res.Weights[row*K+j], wl, ww)
					}
				}
				row++
			}
		}
		if row != res.X.N {
			return fmt.Errorf("rank %d: %d rows, want %d", me, res.X.N, row)
		}
		// expert: multiply by (me+2)
		y := make([]tensor.BF16, res.X.N*H)
		for i := range y {
			y[i] = tensor.BF16FromFloat32(res.X.BF16[i].Float32() * float32(me+2))
		}
		cb, err := b.Combine(ctx, y, res.Handle, ep.CombineOptions{})
		if err != nil {
			return err
		}
		for tok := 0; tok < n; tok++ {
			mult := 0.0
			seen := map[int]bool{}
			for j := 0; j < K; j++ {
				if e := idxs[me][tok*K+j]; e >= 0 && !seen[int(e)/el] {
					seen[int(e)/el] = true
					mult += float64(int(e)/el + 2)
				}
			}
			for c := 0; c < H; c++ {
				want := tensor.BF16FromFloat32(float32(float64(xs[me][tok*H+c]) * mult)).Float32()
				if got := cb.X[tok*H+c].Float32(); math.Abs(float64(got-want)) > 1e-2*math.Abs(float64(want))+1e-6 {
					return fmt.Errorf("rank %d combine tok %d c %d: %v want %v", me, tok, c, got, want)
				}
			}
		}
		// low latency, weighted; a -1 slot with a nonzero weight must be skipped
		lres, err := b.LowLatencyDispatch(ctx, ep.Tokens{N: n, Hidden: H, BF16: bf(xs[me])}, ep.TopK{K: K, Idx: idxs[me], Weights: ws[me]}, ep.LowLatencyOptions{})
		if err != nil {
			return err
		}
		rm := R * cfg.MaxTokensPerRank
		ly := make([]tensor.BF16, el*rm*H)
		for e := 0; e < el; e++ {
			g := float32(1 + (me*el+e)%4)
			for j := 0; j < int(lres.Count[e]); j++ {
				for c := 0; c < H; c++ {
					ly[(e*rm+j)*H+c] = tensor.BF16FromFloat32(lres.X.BF16[(e*rm+j)*H+c].Float32() * g)
				}
			}
		}
		lc, err := b.LowLatencyCombine(ctx, ly, ep.TopK{K: K, Idx: idxs[me], Weights: ws[me]}, lres.Handle, ep.LowLatencyCombineOptions{})
		if err != nil {
			return err
		}
		for tok := 0; tok < n; tok++ {
			for c := 0; c < H; c++ {
				want := 0.0
				for j := 0; j < K; j++ {
					if e := idxs[me][tok*K+j]; e >= 0 {
						want += float64(ws[me][tok*K+j]) * float64(1+int(e)%4) * float64(xs[me][tok*H+c])
					}
				}
				if got := float64(lc.X[tok*H+c].Float32()); math.Abs(got-want) > 1e-2*math.Abs(want)+1e-6 {
					return fmt.Errorf("rank %d LL combine tok %d c %d: %v want %v", me, tok, c, got, want)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
