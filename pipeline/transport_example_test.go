package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fireflyer-go/fireflyer/pipeline"
)

// countingTransport is a user-written Transport: it forwards to another one
// (here an in-process ChanNetwork endpoint; in a cluster, a socket or NCCL
// wrapper) and counts the activations and gradients it sends.
type countingTransport struct {
	next pipeline.Transport[float64]
	sent *atomic.Int64
}

func (c countingTransport) Send(ctx context.Context, to int, tag pipeline.Tag, msg float64) error {
	c.sent.Add(1)
	return c.next.Send(ctx, to, tag, msg)
}

func (c countingTransport) Recv(ctx context.Context, from int, tag pipeline.Tag) (float64, error) {
	return c.next.Recv(ctx, from, tag)
}

// Running each rank of a 1F1B schedule (2 ranks, 2 micro-batches) with
// Executor.RunRank over a caller's own Transport, one goroutine per rank as
// separate processes would run them.
func ExampleExecutor_RunRank() {
	s, _ := pipeline.OneFOneB(2, 2)
	prog, _ := pipeline.Lower(s)
	ex := &pipeline.Executor[float64]{
		Program:   prog,
		Input:     func(pipe, micro int) (float64, error) { return float64(micro + 1), nil },
		Criterion: func(pipe, micro int, out float64) (float64, float64, error) { return out, 1, nil },
	}
	net := pipeline.NewChanNetwork[float64](s.Ranks)
	var sent atomic.Int64
	var wg sync.WaitGroup
	losses := make([][]pipeline.Loss, s.Ranks)
	errs := make([]error, s.Ranks)
	for r := range s.Ranks {
		wg.Go(func() {
			// Rank r holds stage r, which multiplies by r+2.
			stages := []pipeline.Stage[float64]{newScale(float64(r + 2))}
			tr := countingTransport{next: net.Endpoint(r), sent: &sent}
			losses[r], errs[r] = ex.RunRank(context.Background(), r, stages, tr)
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			fmt.Println("rank", r, "failed:", err)
			return
		}
	}
	for _, l := range losses[s.Ranks-1] {
		fmt.Printf("micro-batch %d loss %.0f\n", l.Micro, l.Value)
	}
	fmt.Println("messages sent:", sent.Load())
	// Output:
	// micro-batch 0 loss 6
	// micro-batch 1 loss 12
	// messages sent: 4
}
