package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Stage is one pipeline stage as the executor drives it, for one payload
// type T (activations and gradients, e.g. a []float64 of shape
// [micro-batch rows, hidden]). It mirrors what upstream DualPipe does with an
// nn.Module: forward keeps what backward needs; the input-only backward
// computes the input gradient and leaves the weight gradient for later, as
// WeightGradStore does with its closures (deepseek-ai/DualPipe
// dualpipe/utils.py).
//
// The executor calls one Stage from one goroutine at a time.
type Stage[T any] interface {
	// Forward runs micro-batch micro and returns its output.
	Forward(ctx context.Context, micro int, in T) (T, error)
	// BackwardInput takes the gradient of the micro-batch's output and
	// returns the gradient of its input; the weight gradient is deferred.
	BackwardInput(ctx context.Context, micro int, gradOut T) (T, error)
	// BackwardWeight computes (accumulates) the deferred weight gradient of
	// micro-batch micro. A full backward B is BackwardInput then
	// BackwardWeight.
	BackwardWeight(ctx context.Context, micro int) error
}

// Overlapper is the optional hook for an overlapped F&B pair, upstream's
// classmethod overlapped_forward_backward: it runs the forward of fMicro on
// stage fwd and the full backward (input and weight gradient) of bMicro on
// stage bwd together, overlapping one's communication with the other's
// compute. The executor uses it when the forward half's stage implements
// it; otherwise it runs Forward, then BackwardInput and BackwardWeight.
type Overlapper[T any] interface {
	OverlappedForwardBackward(ctx context.Context, fwd Stage[T], fMicro int, in T, bwd Stage[T], bMicro int, gradOut T) (out, gradIn T, err error)
}

// Loss is one micro-batch's loss, as returned by the executor.
type Loss struct {
	Pipe  int     // the pipe (DualPipe direction) the micro-batch went down
	Micro int     // micro-batch index within its pipe
	Value float64 // what Criterion returned
}

// Executor runs user stages in a lowered program's order.
type Executor[T any] struct {
	// Program is the lowered schedule; Check it first.
	Program *Program
	// Input returns the input of micro-batch micro entering pipe (stage 0).
	// Called on the rank that holds stage 0 of pipe; must be safe for
	// concurrent use.
	Input func(pipe, micro int) (T, error)
	// Criterion turns the last stage's output of a micro-batch into its loss
	// and the gradient of the loss with respect to that output. Must be safe
	// for concurrent use.
	Criterion func(pipe, micro int, out T) (loss float64, grad T, err error)
}

type bufKey struct {
	peer int // -1 for local
	tag  Tag
}

// RunRank runs rank's instructions with stages[phase] as the rank's stages
// over tr. It returns the losses computed on this rank (in the order
// computed). It fails with an error wrapping ErrWeightStore if the FIFO
// weight-gradient store pops an unexpected entry or is not empty at the end,
// with ErrParam if the arguments do not fit the program (including a nil
// stage or transport), with ErrSchedule if one of the rank's compute
// instructions names a kind, phase or micro-batch outside the schedule, and
// with any error of a stage, the criterion, the input function or the
// transport.
func (e *Executor[T]) RunRank(ctx context.Context, rank int, stages []Stage[T], tr Transport[T]) ([]Loss, error) {
	p := e.Program
	if p == nil || p.Schedule == nil {
		return nil, fmt.Errorf("%w: executor has no program", ErrParam)
	}
	s := p.Schedule
	if rank < 0 || rank >= s.Ranks || rank >= len(s.Place) || rank >= len(p.Ranks) {
		return nil, fmt.Errorf("%w: rank=%d outside %d ranks (%d placements, %d programs)", ErrParam, rank, s.Ranks, len(s.Place), len(p.Ranks))
	}
	if len(stages) != len(s.Place[rank]) {
		return nil, fmt.Errorf("%w: rank %d got %d stages, schedule places %d", ErrParam, rank, len(stages), len(s.Place[rank]))
	}
	for ph, st := range stages {
		if st == nil {
			return nil, fmt.Errorf("%w: rank %d stage for phase %d is nil", ErrParam, rank, ph)
		}
	}
	if e.Input == nil || e.Criterion == nil {
		return nil, fmt.Errorf("%w: executor needs Input and Criterion", ErrParam)
	}
	if tr == nil {
		return nil, fmt.Errorf("%w: rank %d has no transport", ErrParam, rank)
	}
	// An unchecked program must not index past the rank's stages.
	for i, in := range p.Ranks[rank] {
		if in.Kind != Compute {
			continue
		}
		for _, a := range in.Op.Actions() {
			if a.Kind < Forward || a.Kind > BackwardWeight || a.Phase < 0 || a.Phase >= len(stages) || a.Micro < 0 || a.Micro >= s.Micro {
				return nil, fmt.Errorf("%w: rank %d instruction %d %v: bad kind, phase or micro-batch (run Program.Check first)", ErrSchedule, rank, i, a)
			}
		}
	}
	pl := newPlacement(s)
	inbox := map[Tag]T{}     // received messages and local hand-offs
	outbox := map[bufKey]T{} // outputs awaiting their Send
	var wq []Action          // FIFO weight-gradient store
	var losses []Loss

	// route delivers the output of action a: locally, to the outbox, or to
	// the criterion on the last stage.
	route := func(a Action, out T) error {
		ref := s.Place[rank][a.Phase]
		if a.Kind == Forward && ref.Stage == s.Stages-1 {
			l, g, err := e.Criterion(ref.Pipe, a.Micro, out)
			if err != nil {
				return fmt.Errorf("pipeline: criterion of pipe %d micro-batch %d: %w", ref.Pipe, a.Micro, err)
			}
			losses = append(losses, Loss{ref.Pipe, a.Micro, l})
			inbox[Tag{a.Phase, Gradient, a.Micro}] = g
			return nil
		}
		c, kind := pl.consumer(rank, a)
		if !c.ok {
			return nil // input gradient of the first stage: nothing consumes it
		}
		t := Tag{c.phase, kind, a.Micro}
		if c.rank == rank {
			inbox[t] = out
		} else {
			outbox[bufKey{c.rank, t}] = out
		}
		return nil
	}
	take := func(t Tag) (T, error) {
		v, ok := inbox[t]
		if !ok {
			return v, fmt.Errorf("%w: rank %d has no %v", ErrSchedule, rank, t)
		}
		delete(inbox, t)
		return v, nil
	}
	input := func(a Action) (T, error) {
		ref := s.Place[rank][a.Phase]
		if a.Kind == Forward {
			if ref.Stage == 0 {
				v, err := e.Input(ref.Pipe, a.Micro)
				if err != nil {
					err = fmt.Errorf("pipeline: input of pipe %d micro-batch %d: %w", ref.Pipe, a.Micro, err)
				}
				return v, err
			}
			return take(Tag{a.Phase, Activation, a.Micro})
		}
		return take(Tag{a.Phase, Gradient, a.Micro})
	}
	run := func(a Action) error {
		st := stages[a.Phase]
		in, err := input(a)
		if err != nil {
			return err
		}
		var out T
		switch a.Kind {
		case Forward:
			out, err = st.Forward(ctx, a.Micro, in)
		case Backward, BackwardInput:
			out, err = st.BackwardInput(ctx, a.Micro, in)
			if err == nil && a.Kind == Backward {
				err = st.BackwardWeight(ctx, a.Micro)
			}
			if err == nil && a.Kind == BackwardInput {
				wq = append(wq, Action{BackwardWeight, a.Phase, a.Micro})
			}
		}
		if err != nil {
			return fmt.Errorf("pipeline: rank %d %v: %w", rank, a, err)
		}
		return route(a, out)
	}
	overlapped := func(o Op) error {
		h, ok := stages[o.Phase].(Overlapper[T])
		if !ok {
			if err := run(o.Action); err != nil {
				return err
			}
			return run(o.With)
		}
		in, err := input(o.Action)
		if err != nil {
			return err
		}
		g, err := input(o.With)
		if err != nil {
			return err
		}
		out, gin, err := h.OverlappedForwardBackward(ctx, stages[o.Phase], o.Micro, in, stages[o.With.Phase], o.With.Micro, g)
		if err != nil {
			return fmt.Errorf("pipeline: rank %d %v: %w", rank, o, err)
		}
		if err := route(o.Action, out); err != nil {
			return err
		}
		return route(o.With, gin)
	}

	var queue []Instr // a batched program's uncommitted sends and receives
	send := func(in Instr) error {
		k := bufKey{in.Peer, in.Tag}
		v, ok := outbox[k]
		if !ok {
			return fmt.Errorf("%w: rank %d sends %v to r%d before computing it", ErrSchedule, rank, in.Tag, in.Peer)
		}
		delete(outbox, k)
		return tr.Send(ctx, in.Peer, in.Tag, v)
	}
	recv := func(in Instr) error {
		v, err := tr.Recv(ctx, in.Peer, in.Tag)
		if err != nil {
			return err
		}
		inbox[in.Tag] = v
		return nil
	}
	for _, in := range p.Ranks[rank] {
		if err := ctx.Err(); err != nil {
			return losses, err
		}
		switch in.Kind {
		case Recv:
			if p.Batched {
				queue = append(queue, in)
			} else if err := recv(in); err != nil {
				return losses, err
			}
		case Send:
			if p.Batched {
				// Take the payload now: upstream queues the tensors themselves.
				k := bufKey{in.Peer, in.Tag}
				if _, ok := outbox[k]; !ok {
					return losses, fmt.Errorf("%w: rank %d sends %v to r%d before computing it", ErrSchedule, rank, in.Tag, in.Peer)
				}
				queue = append(queue, in)
			} else if err := send(in); err != nil {
				return losses, err
			}
		case Commit:
			// Sends never block, so posting them first and then waiting
			// for the receives completes whenever the batch can complete.
			for _, q := range queue {
				if q.Kind == Send {
					if err := send(q); err != nil {
						return losses, err
					}
				}
			}
			for _, q := range queue {
				if q.Kind == Recv {
					if err := recv(q); err != nil {
						return losses, err
					}
				}
			}
			queue = queue[:0]
		case Compute:
			o := in.Op
			var err error
			switch {
			case o.Overlapped():
				err = overlapped(o)
			case o.Kind == BackwardWeight:
				if len(wq) == 0 || wq[0] != o.Action {
					return losses, fmt.Errorf("%w: rank %d runs %v but the oldest queued weight gradient is %v", ErrWeightStore, rank, o.Action, wq)
				}
				wq = wq[1:]
				if err = stages[o.Phase].BackwardWeight(ctx, o.Micro); err != nil {
					err = fmt.Errorf("pipeline: rank %d %v: %w", rank, o.Action, err)
				}
			default:
				err = run(o.Action)
			}
			if err != nil {
				return losses, err
			}
		}
	}
	if len(queue) != 0 {
		return losses, fmt.Errorf("%w: rank %d ends with %d uncommitted sends/receives", ErrSchedule, rank, len(queue))
	}
	if len(wq) != 0 {
		return losses, fmt.Errorf("%w: rank %d ends the step with %d queued weight gradients", ErrWeightStore, rank, len(wq))
	}
	if len(inbox) != 0 || len(outbox) != 0 {
		return losses, fmt.Errorf("%w: rank %d ends with %d unconsumed inputs and %d unsent outputs", ErrSchedule, rank, len(inbox), len(outbox))
	}
	return losses, nil
}

// RunLocal runs every rank in its own goroutine over an in-process
// ChanNetwork; stages[rank][phase] are the ranks' stages. On the first error
// it cancels the other ranks and returns that error. The losses come back
// sorted by pipe, then micro-batch.
func (e *Executor[T]) RunLocal(ctx context.Context, stages [][]Stage[T]) ([]Loss, error) {
	if e.Program == nil || e.Program.Schedule == nil {
		return nil, fmt.Errorf("%w: executor has no program", ErrParam)
	}
	n := e.Program.Schedule.Ranks
	if len(stages) != n {
		return nil, fmt.Errorf("%w: got stages for %d ranks, schedule has %d", ErrParam, len(stages), n)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	net := NewChanNetwork[T](n)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []Loss
		errs   = make([]error, n)
		first  error
		failed bool
	)
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			l, err := e.RunRank(ctx, r, stages[r], net.Endpoint(r))
			mu.Lock()
			defer mu.Unlock()
			all = append(all, l...)
			errs[r] = err
			if err != nil && !failed {
				failed, first = true, err
				cancel()
			}
		}(r)
	}
	wg.Wait()
	if failed {
		// Prefer the root cause over the cancellations it caused.
		if errors.Is(first, context.Canceled) {
			for _, err := range errs {
				if err != nil && !errors.Is(err, context.Canceled) {
					first = err
					break
				}
			}
		}
		return nil, first
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Pipe != all[j].Pipe {
			return all[i].Pipe < all[j].Pipe
		}
		return all[i].Micro < all[j].Micro
	})
	return all, nil
}
