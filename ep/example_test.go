package ep_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Two ranks, four experts (two per rank), two tokens per rank of four
// channels holding the value 10·rank + token. Each token picks two experts;
// dispatch sends it once per rank, combine sums the rows sent back, so a
// token that went to both ranks comes back doubled.
func Example() {
	const ranks, experts, hidden = 2, 4, 4
	topk := [ranks][]int32{
		{0, 1, 1, 3},  // rank 0: token 0 → experts 0,1 (rank 0); token 1 → 1 (rank 0), 3 (rank 1)
		{2, 3, 0, -1}, // rank 1: token 0 → experts 2,3 (rank 1); token 1 → 0 (rank 0)
	}
	report := make([]string, ranks)
	err := inproc.RunBuffers(context.Background(), ranks, ep.Options{NormalBytes: ep.NormalSizeHint(4, hidden, 2)},
		func(ctx context.Context, b *ep.Buffer) error {
			me := b.Rank()
			x := make([]tensor.BF16, 2*hidden)
			for i := range x {
				x[i] = tensor.BF16FromFloat32(float32(10*me + i/hidden))
			}
			tk := ep.TopK{K: 2, Idx: topk[me]}
			res, err := b.Dispatch(ctx, ep.Tokens{N: 2, Hidden: hidden, BF16: x}, &tk, ep.DispatchOptions{NumExperts: experts})
			if err != nil {
				return err
			}
			var got []float32
			for i := 0; i < res.X.N; i++ {
				got = append(got, res.X.BF16[i*hidden].Float32())
			}
			// An identity "expert": send the received rows back unchanged.
			out, err := b.Combine(ctx, res.X.BF16, res.Handle, ep.CombineOptions{})
			if err != nil {
				return err
			}
			report[me] = fmt.Sprintf("rank %d received %v, local ids %v, per expert %v; combined [%v %v]",
				me, got, res.TopKIdx, res.PerExpert, out.X[0].Float32(), out.X[hidden].Float32())
			return nil
		})
	if err != nil {
		fmt.Println(err)
	}
	for _, line := range report {
		fmt.Println(line)
	}
	// Output:
	// rank 0 received [0 1 11], local ids [0 1 1 -1 0 -1], per expert [2 2]; combined [0 2]
	// rank 1 received [1 10], local ids [-1 1 0 1], per expert [1 2]; combined [10 11]
}
