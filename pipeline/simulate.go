package pipeline

import (
	"fmt"
	"strings"
)

// OpCosts are the durations of the compute ops in integer time units (the
// caller picks the unit: ticks, µs, ms). F is a forward, B a full backward, W
// the weight-gradient part of B (so an input-only backward b costs B−W) and
// FB an overlapped forward&backward pair, as in the upstream DualPipe README
// bubble table.
type OpCosts struct {
	F, B, W, FB int64
}

func (c OpCosts) check(what string) error {
	if c.F < 0 || c.B < 0 || c.W < 0 || c.FB < 0 {
		return fmt.Errorf("%w: %s costs F=%d B=%d W=%d FB=%d must be ≥ 0", ErrParam, what, c.F, c.B, c.W, c.FB)
	}
	if c.W > c.B {
		return fmt.Errorf("%w: %s cost W=%d must be ≤ B=%d (b = B−W)", ErrParam, what, c.W, c.B)
	}
	const lim = 1 << 40
	if c.F > lim || c.B > lim || c.FB > lim {
		return fmt.Errorf("%w: %s costs must be ≤ 2^40", ErrParam, what)
	}
	return nil
}

// SimOptions configure Simulate.
type SimOptions struct {
	// Costs apply to every stage unless Stage overrides them.
	Costs OpCosts
	// Stage holds per-stage overrides. An overlapped pair takes FB from the
	// stage of its forward half.
	Stage map[StageRef]OpCosts
	// P2P is the latency added when an op consumes the output of an op on
	// another rank (time units, ≥ 0). Hand-offs inside a rank are free.
	P2P int64
	// FreeAtW frees a micro-batch's activations at its W instead of at its
	// input-gradient backward (b or B).
	FreeAtW bool
}

// Span is one op as simulated: it runs on its rank from Start to End.
type Span struct {
	Op         Op
	Start, End int64
}

// Report is the result of Simulate. All times are in the cost unit.
type Report struct {
	// Makespan is the time from the first op's start to the last op's end.
	Makespan int64
	// Busy[r] is the time rank r computes; Idle[r] = Makespan − Busy[r] is
	// its bubble.
	Busy, Idle []int64
	// BubbleRatio is Σ Idle / (ranks · Makespan).
	BubbleRatio float64
	// PeakActivations[r] is the largest number of micro-batch activations
	// rank r holds at once (see PeakActivations).
	PeakActivations []int
	// Spans[r] are rank r's ops with their times, in op order.
	Spans [][]Span
}

// Simulate runs a discrete-event simulation of s: every rank runs its ops in
// order, and an op starts when its rank is free and every op it depends on
// has finished (plus P2P when that op ran on another rank). A forward needs
// the previous stage's forward of the same micro-batch; a backward needs the
// next stage's backward and its own forward; a W needs its b. An overlapped
// pair waits for the dependencies of both halves and lasts FB.
//
// Arithmetic is exact (int64). It returns an error wrapping ErrParam for bad
// costs, ErrSchedule for a malformed schedule, or ErrDeadlock when no rank
// can make progress.
func Simulate(s *Schedule, opt SimOptions) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := opt.Costs.check("default"); err != nil {
		return nil, err
	}
	for ref, c := range opt.Stage {
		if err := c.check(fmt.Sprintf("stage %d/%d", ref.Pipe, ref.Stage)); err != nil {
			return nil, err
		}
	}
	if opt.P2P < 0 || opt.P2P > 1<<40 {
		return nil, fmt.Errorf("%w: P2P latency %d must be in [0, 2^40]", ErrParam, opt.P2P)
	}
	rankOf := map[StageRef]int{}
	for r, ps := range s.Place {
		for _, ref := range ps {
			rankOf[ref] = r
		}
	}
	cost := func(ref StageRef) OpCosts {
		if c, ok := opt.Stage[ref]; ok {
			return c
		}
		return opt.Costs
	}
	dur := func(r int, o Op) int64 {
		c := cost(s.Place[r][o.Phase])
		if o.Overlapped() {
			return c.FB
		}
		switch o.Kind {
		case Forward:
			return c.F
		case Backward:
			return c.B
		case BackwardInput:
			return c.B - c.W
		}
		return c.W
	}
	rep := &Report{
		Busy:            make([]int64, s.Ranks),
		Idle:            make([]int64, s.Ranks),
		PeakActivations: PeakActivations(s, opt.FreeAtW),
		Spans:           make([][]Span, s.Ranks),
	}
	finish := map[actKey]int64{}
	next := make([]int, s.Ranks)
	free := make([]int64, s.Ranks)
	left := 0
	for _, ops := range s.Ops {
		left += len(ops)
	}
	for left > 0 {
		progress := false
		for r, ops := range s.Ops {
			for next[r] < len(ops) {
				o := ops[next[r]]
				start, ready := free[r], true
				for _, a := range o.Actions() {
					k := s.key(r, a)
					for _, d := range s.deps(k, a.Kind) {
						t, ok := finish[d]
						if !ok {
							ready = false
							break
						}
						if rankOf[d.ref] != r {
							t += opt.P2P
						}
						start = max(start, t)
					}
				}
				if !ready {
					break
				}
				end := start + dur(r, o)
				for _, a := range o.Actions() {
					finish[s.key(r, a)] = end
				}
				rep.Spans[r] = append(rep.Spans[r], Span{Op: o, Start: start, End: end})
				rep.Busy[r] += end - start
				free[r] = end
				next[r]++
				left--
				progress = true
			}
		}
		if !progress {
			var sb strings.Builder
			for r, ops := range s.Ops {
				if next[r] < len(ops) {
					fmt.Fprintf(&sb, " r%d waits at %v;", r, ops[next[r]])
				}
			}
			return nil, fmt.Errorf("%w:%s", ErrDeadlock, strings.TrimSuffix(sb.String(), ";"))
		}
	}
	var end int64
	for r := range free {
		end = max(end, free[r])
	}
	rep.Makespan = end
	var idle int64
	for r := range rep.Idle {
		rep.Idle[r] = end - rep.Busy[r]
		idle += rep.Idle[r]
	}
	if end > 0 {
		rep.BubbleRatio = float64(idle) / (float64(s.Ranks) * float64(end))
	}
	return rep, nil
}

// PeakActivations returns, per rank, the largest number of micro-batch
// activations the rank holds at once when it runs its ops in order: +1 when
// a forward runs, −1 when the input-gradient backward (b or B) of the same
// phase and micro-batch runs, or at its W when freeAtW is set (a full B
// frees at once either way). Inside an overlapped pair the forward counts
// before the backward frees.
func PeakActivations(s *Schedule, freeAtW bool) []int {
	peaks := make([]int, len(s.Ops))
	for r, ops := range s.Ops {
		cur, peak := 0, 0
		for _, o := range ops {
			for _, a := range o.Actions() {
				switch {
				case a.Kind == Forward:
					cur++
				case a.Kind == Backward,
					a.Kind == BackwardInput && !freeAtW,
					a.Kind == BackwardWeight && freeAtW:
					cur--
				}
				peak = max(peak, cur)
			}
		}
		peaks[r] = peak
	}
	return peaks
}
