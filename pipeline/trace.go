package pipeline

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Call is one recorded stage call: its kind (Forward, BackwardInput or
// BackwardWeight) and its wall-clock start and end in nanoseconds since the
// Unix epoch, so that the calls of rank processes on one host share a clock.
type Call struct {
	Kind       Kind
	Start, End int64
}

// Trace records the stage calls of one rank, in call order, for drawing a
// measured timeline next to Simulate's (Measured, pipeline/svg's
// Options.Compare). It is safe for concurrent use.
type Trace struct {
	mu    sync.Mutex
	calls []Call
}

// Wrap returns st with every call recorded in t. The wrapper does not
// implement Overlapper: an overlapped pair runs as its two halves.
func Wrap[T any](t *Trace, st Stage[T]) Stage[T] { return traced[T]{st, t} }

// Reset forgets the recorded calls (say, before the step to measure).
func (t *Trace) Reset() {
	t.mu.Lock()
	t.calls = t.calls[:0]
	t.mu.Unlock()
}

// Calls returns a copy of the recorded calls.
func (t *Trace) Calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Call(nil), t.calls...)
}

func (t *Trace) record(k Kind, start time.Time) {
	end := time.Now()
	t.mu.Lock()
	t.calls = append(t.calls, Call{k, start.UnixNano(), end.UnixNano()})
	t.mu.Unlock()
}

type traced[T any] struct {
	st Stage[T]
	t  *Trace
}

func (s traced[T]) Forward(ctx context.Context, micro int, in T) (T, error) {
	defer s.t.record(Forward, time.Now())
	return s.st.Forward(ctx, micro, in)
}

func (s traced[T]) BackwardInput(ctx context.Context, micro int, g T) (T, error) {
	defer s.t.record(BackwardInput, time.Now())
	return s.st.BackwardInput(ctx, micro, g)
}

func (s traced[T]) BackwardWeight(ctx context.Context, micro int) error {
	defer s.t.record(BackwardWeight, time.Now())
	return s.st.BackwardWeight(ctx, micro)
}

// OpSpans groups one rank's recorded calls of one training step into its
// ops (the executor calls an F as one Forward, a B as BackwardInput then
// BackwardWeight, b and W as one call each, and an F&B pair without an
// Overlapper as its forward then its full backward): each op spans from its
// first call's start to its last call's end, in nanoseconds. It returns an
// error wrapping ErrParam when the calls do not fit the ops.
func OpSpans(ops []Op, calls []Call) ([]Span, error) {
	spans := make([]Span, 0, len(ops))
	for i, o := range ops {
		var want []Kind
		for _, a := range o.Actions() {
			if a.Kind == Backward {
				want = append(want, BackwardInput, BackwardWeight)
			} else {
				want = append(want, a.Kind)
			}
		}
		if len(calls) < len(want) {
			return nil, fmt.Errorf("%w: op %d %v: %d calls left, want %d", ErrParam, i, o, len(calls), len(want))
		}
		for j, k := range want {
			if calls[j].Kind != k {
				return nil, fmt.Errorf("%w: op %d %v: call %d is %v, want %v", ErrParam, i, o, j, calls[j].Kind, k)
			}
		}
		spans = append(spans, Span{Op: o, Start: calls[0].Start, End: calls[len(want)-1].End})
		calls = calls[len(want):]
	}
	if len(calls) != 0 {
		return nil, fmt.Errorf("%w: %d calls beyond the rank's %d ops", ErrParam, len(calls), len(ops))
	}
	return spans, nil
}

// Measured turns measured spans (spans[r] for s.Ops[r], in op order, times
// in any one unit and origin) into a Report like Simulate's: times shifted
// so that the first op of any rank starts at 0, then scaled down by div
// (say 1000 for ns → µs; ≥ 1), with Makespan, Busy, Idle, BubbleRatio and
// PeakActivations (freed at b). It returns an error wrapping ErrParam when
// the spans do not fit s or a span ends before it starts.
func Measured(s *Schedule, spans [][]Span, div int64) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(spans) != s.Ranks || div < 1 {
		return nil, fmt.Errorf("%w: %d ranks of spans for %d ranks, divisor %d", ErrParam, len(spans), s.Ranks, div)
	}
	t0 := int64(math.MaxInt64)
	for r, sp := range spans {
		if len(sp) != len(s.Ops[r]) {
			return nil, fmt.Errorf("%w: rank %d has %d spans for %d ops", ErrParam, r, len(sp), len(s.Ops[r]))
		}
		for i, x := range sp {
			if x.End < x.Start || x.Op != s.Ops[r][i] {
				return nil, fmt.Errorf("%w: rank %d span %d (%v %d…%d) does not fit op %v", ErrParam, r, i, x.Op, x.Start, x.End, s.Ops[r][i])
			}
			t0 = min(t0, x.Start)
		}
	}
	rep := &Report{Busy: make([]int64, s.Ranks), Idle: make([]int64, s.Ranks), Spans: make([][]Span, s.Ranks),
		PeakActivations: PeakActivations(s, false)}
	for r, sp := range spans {
		for _, x := range sp {
			y := Span{Op: x.Op, Start: (x.Start - t0) / div, End: (x.End - t0) / div}
			rep.Spans[r] = append(rep.Spans[r], y)
			rep.Busy[r] += y.End - y.Start
			rep.Makespan = max(rep.Makespan, y.End)
		}
	}
	var idle int64
	for r := range rep.Idle {
		rep.Idle[r] = rep.Makespan - rep.Busy[r]
		idle += rep.Idle[r]
	}
	if rep.Makespan > 0 {
		rep.BubbleRatio = float64(idle) / float64(int64(s.Ranks)*rep.Makespan)
	}
	return rep, nil
}
