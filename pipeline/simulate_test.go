package pipeline

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

func sim(t *testing.T, m Method, n, c int, opt SimOptions) *Report {
	t.Helper()
	s, err := Generate(m, n, c)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Simulate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// Bubble formulas of the upstream DualPipe README table (research brief
// B3), checked exactly on every rank.
func TestBubble1F1BAndZB1P(t *testing.T) {
	costs := []OpCosts{
		{F: 1, B: 2, W: 1, FB: 3},
		{F: 3, B: 6, W: 2, FB: 9}, // F=1.5 B=3 W=1 in half units
		{F: 2, B: 5, W: 2, FB: 6},
		{F: 96, B: 133, W: 24, FB: 129},
		{F: 5, B: 7, W: 3, FB: 10},
	}
	for _, p := range []int{2, 4, 8} {
		for _, c := range costs {
			for _, m := range []int{p, 2 * p, 3*p + 1} {
				t.Run(fmt.Sprintf("p=%d/m=%d/%+v", p, m, c), func(t *testing.T) {
					r1 := sim(t, Method1F1B, p, m, SimOptions{Costs: c})
					rz := sim(t, MethodZB1P, p, m, SimOptions{Costs: c})
					for r := 0; r < p; r++ {
						if want := int64(p-1) * (c.F + c.B); r1.Idle[r] != want {
							t.Errorf("1F1B rank %d idle %d, want (p−1)(F+B) = %d", r, r1.Idle[r], want)
						}
						if want := int64(p-1) * (c.F + c.B - 2*c.W); rz.Idle[r] != want {
							t.Errorf("ZB1P rank %d idle %d, want (p−1)(F+B−2W) = %d", r, rz.Idle[r], want)
						}
						if want := min(p-r, m); r1.PeakActivations[r] != want || rz.PeakActivations[r] != want {
							t.Errorf("rank %d peak activations 1F1B %d ZB1P %d, want %d", r, r1.PeakActivations[r], rz.PeakActivations[r], want)
						}
					}
				})
			}
		}
	}
}

// The brief's example: p=8, F=1.5, B=3, W=1 gives ZB1P idle 17.5 (35 half units).
func TestBubbleZB1PBriefExample(t *testing.T) {
	rep := sim(t, MethodZB1P, 8, 16, SimOptions{Costs: OpCosts{F: 3, B: 6, W: 2, FB: 9}})
	for r, idle := range rep.Idle {
		if idle != 35 {
			t.Errorf("rank %d idle %d half units, want 35", r, idle)
		}
	}
}

// DualPipe and DualPipeV: idle = (PP/2−1)(F&B+B−3W) exactly at the figure's
// unit costs F=W=1, B=2, F&B=3, on every rank; peak activations PP+1.
func TestBubbleDualPipe(t *testing.T) {
	unit := SimOptions{Costs: OpCosts{F: 1, B: 2, W: 1, FB: 3}}
	formula := func(pp int) int64 { return int64(pp/2-1) * (3 + 2 - 3) }
	for _, n := range []int{2, 4, 8, 16} {
		for _, c := range []int{2 * n, 3 * n, 4 * n} {
			t.Run(fmt.Sprintf("DualPipe/N=%d/C=%d", n, c), func(t *testing.T) {
				rep := sim(t, MethodDualPipe, n, c, unit)
				for r := 0; r < n; r++ {
					if rep.Idle[r] != formula(n) {
						t.Errorf("rank %d idle %d, want %d", r, rep.Idle[r], formula(n))
					}
					if rep.PeakActivations[r] != n+1 {
						t.Errorf("rank %d peak activations %d, want PP+1 = %d", r, rep.PeakActivations[r], n+1)
					}
				}
			})
			t.Run(fmt.Sprintf("DualPipeV/N=%d/C=%d", n, c), func(t *testing.T) {
				rep := sim(t, MethodDualPipeV, n, c, unit)
				for r := 0; r < n; r++ {
					if rep.Idle[r] != formula(2*n) {
						t.Errorf("rank %d idle %d, want %d", r, rep.Idle[r], formula(2*n))
					}
					if rep.PeakActivations[r] != 2*n+1 {
						t.Errorf("rank %d peak activations %d, want 2N+1 = %d", r, rep.PeakActivations[r], 2*n+1)
					}
				}
			})
		}
	}
	// The two spot values.
	if got := sim(t, MethodDualPipe, 4, 8, unit).Idle[0]; got != 2 {
		t.Errorf("DualPipe 4 ranks idle %d, want 2", got)
	}
	if got := sim(t, MethodDualPipe, 8, 16, unit).Idle[0]; got != 6 {
		t.Errorf("DualPipe 8 ranks idle %d, want 6", got)
	}
}

// Busy time is the sum of the op costs, independent of order.
func TestSimulateBusyAndSpans(t *testing.T) {
	c := OpCosts{F: 3, B: 7, W: 2, FB: 8}
	s, _ := DualPipe(4, 12)
	rep, err := Simulate(s, SimOptions{Costs: c, P2P: 1})
	if err != nil {
		t.Fatal(err)
	}
	for r, ops := range s.Ops {
		var want int64
		for _, o := range ops {
			switch {
			case o.Overlapped():
				want += c.FB
			case o.Kind == Forward:
				want += c.F
			case o.Kind == Backward:
				want += c.B
			case o.Kind == BackwardInput:
				want += c.B - c.W
			default:
				want += c.W
			}
		}
		if rep.Busy[r] != want || rep.Busy[r]+rep.Idle[r] != rep.Makespan {
			t.Errorf("rank %d busy %d idle %d makespan %d, want busy %d", r, rep.Busy[r], rep.Idle[r], rep.Makespan, want)
		}
		for i := 1; i < len(rep.Spans[r]); i++ {
			if rep.Spans[r][i].Start < rep.Spans[r][i-1].End {
				t.Fatalf("rank %d op %d overlaps the previous op", r, i)
			}
		}
	}
}

// One micro-batch through two stages: the latency is paid once each way.
func TestSimulateP2PLatency(t *testing.T) {
	s := &Schedule{Method: "custom", Ranks: 2, Chunks: 1, Pipes: 1, Stages: 2, Micro: 1, Place: linearPlace(2),
		Ops: [][]Op{
			{{Action: Action{Forward, 0, 0}}, {Action: Action{Backward, 0, 0}}},
			{{Action: Action{Forward, 0, 0}}, {Action: Action{Backward, 0, 0}}},
		}}
	rep, err := Simulate(s, SimOptions{Costs: OpCosts{F: 2, B: 4, W: 1, FB: 5}, P2P: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Makespan != 2*2+2*4+2*3 {
		t.Errorf("makespan %d, want 18", rep.Makespan)
	}
	if rep.Idle[0] != 12 || rep.Idle[1] != 12 {
		t.Errorf("idle %v, want [12 12]", rep.Idle)
	}
}

func TestSimulateStageOverride(t *testing.T) {
	c := OpCosts{F: 1, B: 2, W: 1, FB: 3}
	slow := OpCosts{F: 2, B: 4, W: 2, FB: 6}
	rep := sim(t, Method1F1B, 4, 8, SimOptions{Costs: c, Stage: map[StageRef]OpCosts{{0, 2}: slow}})
	// The slow stage is never idle after its first forward arrives and
	// until its last backward, so its busy time is m(F+B) of the slow costs.
	if rep.Busy[2] != 8*6 {
		t.Errorf("slow stage busy %d, want 48", rep.Busy[2])
	}
	if rep.Busy[0] != 8*3 {
		t.Errorf("rank 0 busy %d, want 24", rep.Busy[0])
	}
}

func TestPeakFreeAtW(t *testing.T) {
	s, _ := ZB1P(4, 8)
	atB := PeakActivations(s, false)
	atW := PeakActivations(s, true)
	// Rank r defers its first r W's, so it holds r more activations.
	for r := range atB {
		if atW[r] != atB[r]+r {
			t.Errorf("rank %d peak at W %d, want %d", r, atW[r], atB[r]+r)
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	s, _ := OneFOneB(2, 2)
	if _, err := Simulate(s, SimOptions{Costs: OpCosts{F: 1, B: 1, W: 2, FB: 1}}); !errors.Is(err, ErrParam) {
		t.Errorf("W > B: err = %v", err)
	}
	if _, err := Simulate(s, SimOptions{Costs: OpCosts{F: -1, B: 1}}); !errors.Is(err, ErrParam) {
		t.Errorf("F < 0: err = %v", err)
	}
	if _, err := Simulate(s, SimOptions{P2P: -1}); !errors.Is(err, ErrParam) {
		t.Errorf("P2P < 0: err = %v", err)
	}
	// Rank 0 waits for the backward first: a cross-rank deadlock.
	bad := &Schedule{Method: "custom", Ranks: 2, Chunks: 1, Pipes: 1, Stages: 2, Micro: 1, Place: linearPlace(2),
		Ops: [][]Op{
			{{Action: Action{Forward, 0, 0}}, {Action: Action{Backward, 0, 0}}},
			{{Action: Action{Backward, 0, 0}}, {Action: Action{Forward, 0, 0}}},
		}}
	if _, err := Simulate(bad, SimOptions{}); !errors.Is(err, ErrSchedule) {
		t.Errorf("local order: err = %v", err)
	}
	if _, err := Simulate(crossDeadlock(), SimOptions{}); !errors.Is(err, ErrDeadlock) {
		t.Errorf("cross-rank wait: err = %v", err)
	}
}

// crossDeadlock is a two-pipe schedule whose ranks each first wait for the
// other's forward.
func crossDeadlock() *Schedule {
	return &Schedule{Method: "custom", Ranks: 2, Chunks: 2, Pipes: 2, Stages: 2, Micro: 1,
		Place: [][]StageRef{{{0, 0}, {1, 1}}, {{0, 1}, {1, 0}}},
		Ops: [][]Op{
			{{Action: Action{Forward, 1, 0}}, {Action: Action{Forward, 0, 0}}, {Action: Action{Backward, 1, 0}}, {Action: Action{Backward, 0, 0}}},
			{{Action: Action{Forward, 0, 0}}, {Action: Action{Forward, 1, 0}}, {Action: Action{Backward, 0, 0}}, {Action: Action{Backward, 1, 0}}},
		}}
}

// Replaying the dataflow program gives exactly Simulate's result at any
// latency. Upstream's batched, blocking commits can only add waiting; for
// DualPipe and DualPipeV at the figure's unit costs and zero latency they
// add none (research brief B3, second model).
func TestSimulateProgram(t *testing.T) {
	costs := []OpCosts{{F: 1, B: 2, W: 1, FB: 3}, {F: 96, B: 133, W: 24, FB: 129}, {F: 5, B: 7, W: 3, FB: 9}}
	for _, m := range []Method{Method1F1B, MethodZB1P, MethodDualPipe, MethodDualPipeV} {
		for _, n := range []int{2, 4, 8} {
			for _, c := range costs {
				t.Run(fmt.Sprintf("%s/N=%d/%+v", m, n, c), func(t *testing.T) {
					s, err := Generate(m, n, 3*n)
					if m == MethodDualPipe {
						s, err = Generate(m, n, 4*n)
					}
					if err != nil {
						t.Fatal(err)
					}
					flow, _ := Lower(s)
					ref, _ := LowerReference(s)
					for _, lat := range []int64{0, 1, 10} {
						opt := SimOptions{Costs: c, P2P: lat}
						want, err := Simulate(s, opt)
						if err != nil {
							t.Fatal(err)
						}
						got, err := SimulateProgram(flow, opt)
						if err != nil {
							t.Fatal(err)
						}
						if got.Makespan != want.Makespan || fmt.Sprint(got.Spans) != fmt.Sprint(want.Spans) {
							t.Errorf("P2P=%d: dataflow program makespan %d, schedule %d", lat, got.Makespan, want.Makespan)
						}
						br, err := SimulateProgram(ref, opt)
						if err != nil {
							t.Fatal(err)
						}
						unit := c == costs[0] && (m == MethodDualPipe || m == MethodDualPipeV)
						if unit && lat == 0 && br.Makespan != want.Makespan {
							t.Errorf("batched commits makespan %d, dataflow %d", br.Makespan, want.Makespan)
						}
						if br.Makespan < want.Makespan {
							t.Errorf("P2P=%d: batched commits beat the dataflow bound: %d < %d", lat, br.Makespan, want.Makespan)
						}
					}
				})
			}
		}
	}
}

// Inside the regime the research brief describes (b ≥ max(F, W) and
// max(F, B) ≤ F&B ≤ F+B) DualPipe's and DualPipeV's idle never exceeds
// (PP/2−1)(F&B+B−3W) on any rank. Outside it the formula is only an
// estimate and is not asserted.
func TestBubbleDualPipeRegimeBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		F := rapid.Int64Range(1, 40).Draw(t, "F")
		W := rapid.Int64Range(1, 40).Draw(t, "W")
		b := rapid.Int64Range(max(F, W), 80).Draw(t, "b")
		B := b + W
		FB := rapid.Int64Range(max(F, B), F+B).Draw(t, "FB")
		m := rapid.SampledFrom([]Method{MethodDualPipe, MethodDualPipeV}).Draw(t, "method")
		n := rapid.SampledFrom([]int{2, 4, 8}).Draw(t, "ranks")
		c := 2*n + 2*rapid.IntRange(0, n).Draw(t, "extra")
		s, err := Generate(m, n, c)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Simulate(s, SimOptions{Costs: OpCosts{F: F, B: B, W: W, FB: FB}})
		if err != nil {
			t.Fatal(err)
		}
		pp := n
		if m == MethodDualPipeV {
			pp = 2 * n
		}
		bound := int64(pp/2-1) * (FB + B - 3*W)
		for r, idle := range rep.Idle {
			if idle > bound {
				t.Fatalf("rank %d idle %d > (PP/2−1)(F&B+B−3W) = %d", r, idle, bound)
			}
		}
	})
}
