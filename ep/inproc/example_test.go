package inproc_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Three goroutine ranks each put their rank number into rank 0's region
// and signal; rank 0 waits for the three signals and reads the slots.
func ExampleRun() {
	var got []byte
	err := inproc.Run(context.Background(), 3, func(ctx context.Context, t ep.Transport) error {
		reg, err := t.Register(ctx, 64)
		if err != nil {
			return err
		}
		if err := t.Put(ctx, 0, 8+t.Rank(), []byte{byte('a' + t.Rank())}); err != nil {
			return err
		}
		if err := t.Signal(ctx, 0, 0, 1); err != nil {
			return err
		}
		if t.Rank() == 0 {
			if _, err := reg.Wait(ctx, 0, 3); err != nil {
				return err
			}
			got = append(got, reg.Bytes()[8:11]...)
		}
		return t.Barrier(ctx)
	})
	fmt.Println(string(got), err)
	// Output: abc <nil>
}

// Two goroutine ranks with two experts each (four in all): every rank
// dispatches two tokens of four BF16 channels, token t of rank r holding the
// value 10·r + t, to two experts each. Rank 1 hosts experts 2 and 3, so it
// receives the tokens routed there; combining the received rows unchanged
// sends each token back once per rank it went to, so a token sent to both
// ranks comes back doubled.
func ExampleRunBuffers() {
	const ranks, experts, hidden = 2, 4, 4
	opts := ep.Options{NormalBytes: ep.NormalSizeHint(2*ranks, hidden, 2)}
	var mu sync.Mutex
	lines := make([]string, ranks)
	err := inproc.RunBuffers(context.Background(), ranks, opts, func(ctx context.Context, b *ep.Buffer) error {
		r := b.Rank()
		x := ep.Tokens{N: 2, Hidden: hidden, BF16: make([]tensor.BF16, 2*hidden)}
		for t := range 2 {
			for c := range hidden {
				x.BF16[t*hidden+c] = tensor.BF16FromFloat32(float32(10*r + t))
			}
		}
		// Token 0 goes to experts 0 and 1 (rank 0 only), token 1 to
		// experts 1 and 2 (both ranks).
		topk := &ep.TopK{K: 2, Idx: []int32{0, 1, 1, 2}}
		res, err := b.Dispatch(ctx, x, topk, ep.DispatchOptions{NumExperts: experts})
		if err != nil {
			return err
		}
		var recv []float32
		for i := range res.X.N {
			recv = append(recv, res.X.BF16[i*hidden].Float32())
		}
		back, err := b.Combine(ctx, res.X.BF16, res.Handle, ep.CombineOptions{})
		if err != nil {
			return err
		}
		mu.Lock()
		lines[r] = fmt.Sprintf("rank %d: received %v, per local expert %v, combined %v %v", r, recv, res.PerExpert,
			back.X[0].Float32(), back.X[hidden].Float32())
		mu.Unlock()
		return nil
	})
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Println(err)
	// Output:
	// rank 0: received [0 1 10 11], per local expert [2 4], combined 0 2
	// rank 1: received [1 11], per local expert [2 0], combined 10 22
	// <nil>
}
