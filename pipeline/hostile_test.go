package pipeline

import (
	"context"
	"errors"
	"testing"
)

// TestHostileInputs feeds nil, overflowing and hand-edited schedules and
// programs to every entry point: each must return an error wrapping the
// package's sentinel, never panic or accept the input.
func TestHostileInputs(t *testing.T) {
	costs := SimOptions{Costs: OpCosts{F: 1, B: 2, W: 1, FB: 3}}
	g, err := DualPipe(4, 8)
	if err != nil {
		t.Fatal(err)
	}
	lowered := func(t *testing.T) *Program {
		p, err := Lower(g)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Pipes·Stages wraps to 0, which matched the 0 stages placed.
	wrap := &Schedule{Ranks: 1, Pipes: 1 << 32, Stages: 1 << 32, Micro: 1, Place: [][]StageRef{{}}, Ops: [][]Op{{}}}

	cases := []struct {
		name string
		want error
		run  func(t *testing.T) error
	}{
		{"Validate/nil", ErrSchedule, func(*testing.T) error { var s *Schedule; return s.Validate() }},
		{"Simulate/nil", ErrSchedule, func(*testing.T) error { _, err := Simulate(nil, costs); return err }},
		{"Lower/nil", ErrSchedule, func(*testing.T) error { _, err := Lower(nil); return err }},
		{"LowerReference/nil", ErrSchedule, func(*testing.T) error { _, err := LowerReference(nil); return err }},
		{"Check/nil", ErrSchedule, func(*testing.T) error { var p *Program; return p.Check() }},
		{"Validate/pipes-x-stages-overflow", ErrSchedule, func(*testing.T) error { return wrap.Validate() }},
		{"Simulate/pipes-x-stages-overflow", ErrSchedule, func(*testing.T) error { _, err := Simulate(wrap, costs); return err }},
		{"Check/compute-phase-out-of-range", ErrSchedule, func(t *testing.T) error {
			p := lowered(t)
			p.Ranks[0] = append([]Instr{{Kind: Compute, Op: Op{Action: Action{Forward, 7, 0}}}}, p.Ranks[0]...)
			return p.Check()
		}},
		{"SimulateProgram/compute-phase-out-of-range", ErrSchedule, func(t *testing.T) error {
			p := lowered(t)
			p.Ranks[0] = append([]Instr{{Kind: Compute, Op: Op{Action: Action{Forward, 7, 0}}}}, p.Ranks[0]...)
			_, err := SimulateProgram(p, costs)
			return err
		}},
		{"Check/dropped-op", ErrSchedule, func(t *testing.T) error {
			// The last W of rank 0 and nothing else: no message involved.
			p := lowered(t)
			p.Ranks[0] = p.Ranks[0][:len(p.Ranks[0])-1]
			return p.Check()
		}},
		{"SimulateProgram/send-to-missing-rank", ErrUnmatched, func(t *testing.T) error {
			p := lowered(t)
			p.Ranks[0] = append(p.Ranks[0], Instr{Kind: Send, Peer: 99, Tag: Tag{0, Activation, 0}})
			_, err := SimulateProgram(p, costs)
			return err
		}},
		{"RunRank/compute-phase-out-of-range", ErrSchedule, func(t *testing.T) error {
			p := lowered(t)
			p.Ranks[0] = append([]Instr{{Kind: Compute, Op: Op{Action: Action{Forward, 7, 0}}}}, p.Ranks[0]...)
			ex := &Executor[[]float64]{Program: p,
				Input:     func(int, int) ([]float64, error) { return nil, nil },
				Criterion: func(int, int, []float64) (float64, []float64, error) { return 0, nil, nil }}
			_, err := ex.RunRank(context.Background(), 0, mlpStages(g)[0], NewChanNetwork[[]float64](4).Endpoint(0))
			return err
		}},
		{"RunRank/nil-stage-and-transport", ErrParam, func(t *testing.T) error {
			ex := &Executor[[]float64]{Program: lowered(t),
				Input:     func(int, int) ([]float64, error) { return nil, nil },
				Criterion: func(int, int, []float64) (float64, []float64, error) { return 0, nil, nil }}
			if _, err := ex.RunRank(context.Background(), 0, []Stage[[]float64]{nil, nil}, NewChanNetwork[[]float64](4).Endpoint(0)); !errors.Is(err, ErrParam) {
				return err
			}
			_, err := ex.RunRank(context.Background(), 0, mlpStages(g)[0], nil)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			if err := tc.run(t); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if PeakActivations(nil, false) != nil {
		t.Error("PeakActivations(nil) != nil")
	}
}
