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
	F  int64 // forward
	B  int64 // full backward (input and weight gradient)
	W  int64 // weight-gradient part of B; ≤ B
	FB int64 // overlapped forward&backward pair
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
	Op    Op    // the op
	Start int64 // when it starts, in cost units
	End   int64 // when it ends
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
	if err := opt.check(); err != nil {
		return nil, err
	}
	rankOf := map[StageRef]int{}
	for r, ps := range s.Place {
		for _, ref := range ps {
			rankOf[ref] = r
		}
	}
	dur := opt.durations(s)
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
	rep.finish(free)
	return rep, nil
}

func (opt SimOptions) check() error {
	if err := opt.Costs.check("default"); err != nil {
		return err
	}
	for ref, c := range opt.Stage {
		if err := c.check(fmt.Sprintf("stage %d/%d", ref.Pipe, ref.Stage)); err != nil {
			return err
		}
	}
	if opt.P2P < 0 || opt.P2P > 1<<40 {
		return fmt.Errorf("%w: P2P latency %d must be in [0, 2^40]", ErrParam, opt.P2P)
	}
	return nil
}

// durations returns the cost of op o on rank r.
func (opt SimOptions) durations(s *Schedule) func(r int, o Op) int64 {
	cost := func(ref StageRef) OpCosts {
		if c, ok := opt.Stage[ref]; ok {
			return c
		}
		return opt.Costs
	}
	return func(r int, o Op) int64 {
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
}

// finish fills the makespan, idle times and bubble ratio from the spans.
func (rep *Report) finish(free []int64) {
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
		rep.BubbleRatio = float64(idle) / (float64(len(rep.Idle)) * float64(end))
	}
}

// PeakActivations returns, per rank, the largest number of micro-batch
// activations the rank holds at once when it runs its ops in order: +1 when
// a forward runs, −1 when the input-gradient backward (b or B) of the same
// phase and micro-batch runs, or at its W when freeAtW is set (a full B
// frees at once either way). Inside an overlapped pair the forward counts
// before the backward frees.
func PeakActivations(s *Schedule, freeAtW bool) []int {
	if s == nil {
		return nil
	}
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

// SimulateProgram replays a lowered program in time instead of the bare
// schedule: compute ops take their costs; in a plain program a Recv ends at
// the later of the rank's time and its Send's time plus P2P; in a Batched
// program (LowerReference) a Commit posts its queued sends and receives at
// the rank's time, and ends when every one of them has been posted by the
// peer too, plus P2P — upstream's blocking batch_isend_irecv and wait. Data
// dependencies are carried by the messages and each rank's order.
//
// For a Lower program the result equals Simulate's; for LowerReference it
// shows what the batched, blocking commits cost. It first runs p.Check and
// returns its error (ErrSchedule, ErrUnmatched or ErrDeadlock); otherwise an
// error wrapping ErrParam for bad costs.
func SimulateProgram(p *Program, opt SimOptions) (*Report, error) {
	if p == nil || p.Schedule == nil {
		return nil, fmt.Errorf("%w: no program", ErrParam)
	}
	s := p.Schedule
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := opt.check(); err != nil {
		return nil, err
	}
	dur := opt.durations(s)
	rep := &Report{
		Busy:            make([]int64, s.Ranks),
		Idle:            make([]int64, s.Ranks),
		PeakActivations: PeakActivations(s, opt.FreeAtW),
		Spans:           make([][]Span, s.Ranks),
	}
	sendAt, recvAt := map[msgKey]int64{}, map[msgKey]int64{}
	type queued struct {
		key  msgKey
		recv bool
	}
	batch := make([][]queued, s.Ranks)
	posted := make([]bool, s.Ranks)
	now := make([]int64, s.Ranks)
	pc := make([]int, s.Ranks)
	left := 0
	for _, prog := range p.Ranks {
		left += len(prog)
	}
	for left > 0 {
		progress := false
		for r, prog := range p.Ranks {
		rank:
			for pc[r] < len(prog) {
				in := prog[pc[r]]
				switch in.Kind {
				case Send:
					k := msgKey{r, in.Peer, in.Tag}
					if p.Batched {
						batch[r] = append(batch[r], queued{k, false})
					} else {
						sendAt[k] = now[r]
					}
				case Recv:
					k := msgKey{in.Peer, r, in.Tag}
					if p.Batched {
						batch[r] = append(batch[r], queued{k, true})
						break
					}
					t, ok := sendAt[k]
					if !ok {
						break rank
					}
					now[r] = max(now[r], t+opt.P2P)
				case Commit:
					if !posted[r] {
						for _, q := range batch[r] {
							if q.recv {
								recvAt[q.key] = now[r]
							} else {
								sendAt[q.key] = now[r]
							}
						}
						posted[r] = true
						progress = true
					}
					end := now[r]
					for _, q := range batch[r] {
						ts, okS := sendAt[q.key]
						tr, okR := recvAt[q.key]
						if !okS || !okR {
							break rank
						}
						end = max(end, max(ts, tr)+opt.P2P)
					}
					now[r] = end
					batch[r], posted[r] = batch[r][:0], false
				case Compute:
					d := dur(r, in.Op)
					rep.Spans[r] = append(rep.Spans[r], Span{Op: in.Op, Start: now[r], End: now[r] + d})
					rep.Busy[r] += d
					now[r] += d
				default:
					return nil, fmt.Errorf("%w: rank %d instruction %d has kind %d", ErrSchedule, r, pc[r], in.Kind)
				}
				pc[r]++
				left--
				progress = true
			}
		}
		if !progress {
			var waits []string
			for r, prog := range p.Ranks {
				if pc[r] < len(prog) {
					waits = append(waits, fmt.Sprintf("r%d waits at %v", r, prog[pc[r]]))
				}
			}
			return nil, fmt.Errorf("%w: %s", ErrDeadlock, strings.Join(waits, "; "))
		}
	}
	rep.finish(now)
	return rep, nil
}
