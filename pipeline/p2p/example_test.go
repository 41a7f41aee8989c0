package p2p_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/pipeline/p2p"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// scale is a stage y = w·x on float32 tensors, its weight gradient deferred
// to BackwardWeight.
type scale struct {
	w, grad float32
	x, dy   map[int][]float32
}

func newScale(w float32) *scale {
	return &scale{w: w, x: map[int][]float32{}, dy: map[int][]float32{}}
}

func mul(v []float32, w float32) *tensor.Tensor {
	out := make([]float32, len(v))
	for i := range v {
		out[i] = w * v[i]
	}
	t, _ := tensor.FromSlice(out, 1, len(out))
	return t
}

func (s *scale) Forward(_ context.Context, mb int, x *tensor.Tensor) (*tensor.Tensor, error) {
	s.x[mb] = x.F32()
	return mul(x.F32(), s.w), nil
}

func (s *scale) BackwardInput(_ context.Context, mb int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s.dy[mb] = dy.F32()
	return mul(dy.F32(), s.w), nil
}

func (s *scale) BackwardWeight(_ context.Context, mb int) error {
	for i, d := range s.dy[mb] {
		s.grad += d * s.x[mb][i]
	}
	return nil
}

// DualPipeV on 2 ranks (4 stages) with each rank on its own p2p transport.
// Here the ep transport is ep/inproc and the ranks are goroutines; across
// processes each rank would call sock.Dial instead (sock.Launch starts
// them) and run the same code.
func Example() {
	s, _ := pipeline.DualPipeV(2, 4)
	prog, _ := pipeline.LowerReference(s)
	ex := &pipeline.Executor[*tensor.Tensor]{
		Program: prog,
		Input: func(pipe, micro int) (*tensor.Tensor, error) {
			return tensor.FromSlice([]float32{float32(micro + 1), 1}, 1, 2)
		},
		// loss = sum(out)/10, so d loss / d out = 0.1 everywhere.
		Criterion: func(pipe, micro int, out *tensor.Tensor) (float64, *tensor.Tensor, error) {
			v := out.F32()
			g, _ := tensor.FromSlice([]float32{0.1, 0.1}, 1, 2)
			return float64(v[0]+v[1]) / 10, g, nil
		},
	}
	eps, _ := inproc.New(s.Ranks)
	var wg sync.WaitGroup
	results := make([]*pipeline.StepResult[*tensor.Tensor], s.Ranks)
	errs := make([]error, s.Ranks)
	for r := range s.Ranks {
		wg.Go(func() {
			ctx := context.Background()
			net, err := p2p.New(ctx, eps[r], p2p.Options{}) // collective
			if err != nil {
				errs[r] = err
				return
			}
			defer net.Close()
			// Rank r holds stages r and 3−r; stage k multiplies by k+1.
			var stages []pipeline.Stage[*tensor.Tensor]
			for _, p := range s.Place[r] {
				stages = append(stages, newScale(float32(p.Stage+1)))
			}
			results[r], errs[r] = ex.Step(ctx, r, stages, net, pipeline.StepOptions{ReturnOutputs: true})
			if errs[r] == nil {
				errs[r] = net.Barrier(ctx) // close only when every rank is done
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			fmt.Println("rank", r, "failed:", err)
			return
		}
	}
	for i, l := range results[0].Losses {
		fmt.Printf("micro-batch %d loss %.1f output %v\n", l.Micro, l.Value, results[0].Outputs[i].Value.F32())
	}
	// Output:
	// micro-batch 0 loss 4.8 output [24 24]
	// micro-batch 1 loss 7.2 output [48 24]
	// micro-batch 2 loss 9.6 output [72 24]
	// micro-batch 3 loss 12.0 output [96 24]
}
