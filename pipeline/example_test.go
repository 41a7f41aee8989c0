package pipeline_test

import (
	"fmt"

	"github.com/fireflyer-go/fireflyer/pipeline"
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
