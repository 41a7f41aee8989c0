package pipeline_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// DualPipe on 4 ranks with 8 micro-batches, as in the upstream README
// figure, simulated at the figure's unit costs.
func Example() {
	s, err := pipeline.DualPipe(4, 8)
	if err != nil {
		panic(err)
	}
	for _, l := range s.Lines()[:2] {
		fmt.Println(l)
	}
	p, err := pipeline.Lower(s)
	if err != nil {
		panic(err)
	}
	fmt.Println("check:", p.Check())
	rep, err := pipeline.Simulate(s, pipeline.SimOptions{
		Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("makespan", rep.Makespan, "idle", rep.Idle, "peak activations", rep.PeakActivations)
	// Output:
	// r0: F0.0 F0.1 F0.2 F1.0 b1.0 W1.0 F1.1 F0.3&B1.1 F1.2&B0.0 B1.2 F1.3&B0.1 B1.3 b0.2 W0.2 b0.3 W0.3
	// r1: F0.0 F1.0 F0.1 F1.1 F0.2 B1.0 F1.2&B0.0 F0.3&B1.1 F1.3&B0.1 B1.2 B0.2 b1.3 b0.3 W1.3 W0.3
	// check: <nil>
	// makespan 26 idle [2 2 2 2] peak activations [5 5 5 5]
}

// 1F1B against ZB1P on 4 ranks: splitting W out of B and deferring it
// shrinks every rank's bubble from (p−1)(F+B) to (p−1)(F+B−2W).
func ExampleSimulate() {
	costs := pipeline.SimOptions{Costs: pipeline.OpCosts{F: 2, B: 4, W: 2}}
	for _, gen := range []func(int, int) (*pipeline.Schedule, error){pipeline.OneFOneB, pipeline.ZB1P} {
		s, _ := gen(4, 8)
		rep, err := pipeline.Simulate(s, costs)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s makespan %d idle %v\n", s.Method, rep.Makespan, rep.Idle)
	}
	// Output:
	// 1f1b makespan 66 idle [18 18 18 18]
	// zb1p makespan 54 idle [6 6 6 6]
}

// scale is a one-weight stage y = w·x on a single float64, with its weight
// gradient deferred until BackwardWeight.
type scale struct {
	w, grad float64
	x, dy   map[int]float64
}

func newScale(w float64) *scale { return &scale{w: w, x: map[int]float64{}, dy: map[int]float64{}} }

func (s *scale) Forward(_ context.Context, mb int, x float64) (float64, error) {
	s.x[mb] = x
	return s.w * x, nil
}

func (s *scale) BackwardInput(_ context.Context, mb int, dy float64) (float64, error) {
	s.dy[mb] = dy
	return s.w * dy, nil
}

func (s *scale) BackwardWeight(_ context.Context, mb int) error {
	s.grad += s.dy[mb] * s.x[mb]
	return nil
}

// scaleStages places one scale per stage of s on the rank that holds it,
// stage k multiplying by k+1.
func scaleStages(s *pipeline.Schedule) [][]pipeline.Stage[float64] {
	stages := make([][]pipeline.Stage[float64], s.Ranks)
	for r, ps := range s.Place {
		for _, p := range ps {
			stages[r] = append(stages[r], newScale(float64(p.Stage+1)))
		}
	}
	return stages
}

// Running stages in DualPipeV order on 2 ranks (4 stages) in one process.
func ExampleExecutor() {
	s, _ := pipeline.DualPipeV(2, 4)
	prog, _ := pipeline.Lower(s)
	// Rank r holds stages r and 3−r; stage k multiplies by k+1.
	stages := scaleStages(s)
	ex := &pipeline.Executor[float64]{
		Program: prog,
		Input:   func(pipe, micro int) (float64, error) { return float64(micro + 1), nil },
		// loss = out/10, so d loss / d out = 0.1.
		Criterion: func(pipe, micro int, out float64) (float64, float64, error) { return out / 10, 0.1, nil },
	}
	losses, err := ex.RunLocal(context.Background(), stages)
	if err != nil {
		panic(err)
	}
	for _, l := range losses {
		fmt.Printf("micro-batch %d loss %.1f\n", l.Micro, l.Value)
	}
	fmt.Printf("stage 0 weight gradient %.1f\n", stages[0][0].(*scale).grad)
	// Output:
	// micro-batch 0 loss 2.4
	// micro-batch 1 loss 4.8
	// micro-batch 2 loss 7.2
	// micro-batch 3 loss 9.6
	// stage 0 weight gradient 24.0
}

// An inference step (upstream's step under torch.no_grad()) returning the
// last stage's outputs: DualPipeV on 2 ranks, no backward at all.
func ExampleExecutor_StepLocal() {
	s, _ := pipeline.DualPipeV(2, 4)
	prog, _ := pipeline.LowerReference(s)
	stages := scaleStages(s)
	ex := &pipeline.Executor[float64]{
		Program: prog,
		Input:   func(pipe, micro int) (float64, error) { return float64(micro + 1), nil },
		// No Criterion: a forward-only step needs none.
	}
	res, err := ex.StepLocal(context.Background(), stages, pipeline.StepOptions{ForwardOnly: true, ReturnOutputs: true})
	if err != nil {
		panic(err)
	}
	for _, o := range res.Outputs {
		fmt.Printf("micro-batch %d output %.0f\n", o.Micro, o.Value)
	}
	fmt.Println("losses:", len(res.Losses), "stage 0 weight gradient:", stages[0][0].(*scale).grad)
	// Output:
	// micro-batch 0 output 24
	// micro-batch 1 output 48
	// micro-batch 2 output 72
	// micro-batch 3 output 96
	// losses: 0 stage 0 weight gradient: 0
}

// Splitting a batch of 5 rows into 2 micro-batches along dimension 0, as
// torch.tensor_split does (3 rows, then 2), and joining them back.
func ExampleScatterBatch() {
	batch, _ := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5, 2)
	parts, err := pipeline.ScatterBatch(batch, 2, 0)
	if err != nil {
		panic(err)
	}
	for _, p := range parts {
		fmt.Println(p.Shape, p.F32())
	}
	back, _ := pipeline.GatherBatch(parts, 0)
	fmt.Println(back.Shape, back.F32())
	// Output:
	// [3 2] [1 2 3 4 5 6]
	// [2 2] [7 8 9 10]
	// [5 2] [1 2 3 4 5 6 7 8 9 10]
}
