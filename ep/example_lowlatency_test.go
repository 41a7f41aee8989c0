package ep_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The decode path the project demo runs: an FP8 low-latency dispatch to the
// packed per-expert layout, a per-expert computation on the first Count[e]
// rows (here: multiply by 2), and the weighted low-latency combine, on two
// in-process ranks with two experts each.
func ExampleBuffer_LowLatencyDispatch() {
	const ranks, experts, hidden, tokens = 2, 4, 128, 2
	cfg := &ep.LowLatencyConfig{MaxTokensPerRank: tokens, Hidden: hidden, NumExperts: experts, MaxTopK: 2}
	report := make([]string, ranks)
	err := inproc.RunBuffers(context.Background(), ranks, ep.Options{LowLatency: cfg}, func(ctx context.Context, b *ep.Buffer) error {
		me := b.Rank()
		x := make([]tensor.BF16, tokens*hidden)
		for i := range x {
			x[i] = tensor.BF16FromFloat32(float32(1 + me)) // rank 0 sends 1s, rank 1 sends 2s
		}
		topk := ep.TopK{K: 2, Idx: []int32{0, 3, 1, -1}, Weights: []float32{0.25, 0.75, 1, 0}}
		res, err := b.LowLatencyDispatch(ctx, ep.Tokens{N: tokens, Hidden: hidden, BF16: x}, topk, ep.LowLatencyOptions{UseFP8: true})
		if err != nil {
			return err
		}
		// Expert e of this rank: y = 2·dequant(x) for its Count[e] valid rows,
		// written straight into the zero-copy combine buffer.
		y := b.NextCombineBuffer()
		rm := ranks * tokens
		for e, cnt := range res.Count {
			for j := 0; j < int(cnt); j++ {
				row := e*rm + j
				for c := 0; c < hidden; c++ {
					v := res.X.FP8[row*hidden+c].Float32() * res.X.Scales[row*ep.NumScales(hidden)+c/128]
					y[row*hidden+c] = tensor.BF16FromFloat32(2 * v)
				}
			}
		}
		out, err := b.LowLatencyCombine(ctx, nil, topk, res.Handle, ep.LowLatencyCombineOptions{ZeroCopy: true})
		if err != nil {
			return err
		}
		report[me] = fmt.Sprintf("rank %d: counts per local expert %v, combined token 0 = %v, token 1 = %v",
			me, res.Count, out.X[0].Float32(), out.X[hidden].Float32())
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	for _, line := range report {
		fmt.Println(line)
	}
	// Output:
	// rank 0: counts per local expert [2 2], combined token 0 = 2, token 1 = 2
	// rank 1: counts per local expert [0 2], combined token 0 = 4, token 1 = 4
}
