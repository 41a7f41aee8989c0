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

// StepOptions are the options of one step, upstream's DualPipe.step
// arguments and constructor options that are not the data.
type StepOptions struct {
	// ForwardOnly runs an inference step, as upstream does when autograd is
	// off: every backward and weight-gradient op is skipped, an overlapped
	// F&B pair runs its forward only, no gradient is sent or received and
	// the weight-gradient store stays empty. Criterion may then be nil (no
	// losses); when set, its gradient is ignored. Stages can tell with
	// IsForwardOnly(ctx) that they need not keep anything for a backward.
	ForwardOnly bool
	// ReturnOutputs keeps the last stage's output of every micro-batch
	// (upstream's return_outputs): StepResult.Outputs on the ranks that
	// hold a pipe's last stage, in micro-batch order (join them with
	// GatherBatch).
	ReturnOutputs bool
	// RankMapping maps a transport rank to its pipeline rank (upstream's
	// rank_mapping: process-group rank → pipeline rank); nil is the
	// identity. It must be a permutation of 0…Ranks−1. Step's rank argument
	// is then the transport rank, and messages to pipeline rank q go to
	// transport rank r with RankMapping[r] = q.
	RankMapping []int
}

// Output is the last stage's output of one micro-batch (StepOptions.ReturnOutputs).
type Output[T any] struct {
	Pipe  int // the pipe (DualPipe direction) the micro-batch went down
	Micro int // micro-batch index within its pipe
	Value T   // the output the last stage's Forward returned
}

// StepResult is what one rank's step returns.
type StepResult[T any] struct {
	// Losses are the losses computed on this rank (the ranks that hold a
	// pipe's last stage), sorted by pipe, then micro-batch: upstream's
	// stacked loss.
	Losses []Loss
	// Outputs are the last-stage outputs computed on this rank, sorted the
	// same way, when StepOptions.ReturnOutputs is set.
	Outputs []Output[T]
}

type forwardOnlyKey struct{}

// IsForwardOnly reports whether ctx is that of a forward-only step
// (StepOptions.ForwardOnly): a Stage's Forward may then skip saving what its
// backward would need, as torch does under no_grad.
func IsForwardOnly(ctx context.Context) bool {
	v, _ := ctx.Value(forwardOnlyKey{}).(bool)
	return v
}

// CheckRankMapping reports whether m is a valid StepOptions.RankMapping for
// ranks ranks (nil is) and returns its inverse (pipeline rank → transport
// rank). Errors wrap ErrParam, also for ranks outside 1…MaxRanks.
func CheckRankMapping(m []int, ranks int) ([]int, error) {
	if ranks < 1 || ranks > MaxRanks {
		return nil, fmt.Errorf("%w: rank mapping for %d ranks: want 1…%d", ErrParam, ranks, MaxRanks)
	}
	inv := make([]int, ranks)
	if m == nil {
		for i := range inv {
			inv[i] = i
		}
		return inv, nil
	}
	if len(m) != ranks {
		return nil, fmt.Errorf("%w: rank mapping has %d entries for %d ranks", ErrParam, len(m), ranks)
	}
	for i := range inv {
		inv[i] = -1
	}
	for r, q := range m {
		if q < 0 || q >= ranks || inv[q] >= 0 {
			return nil, fmt.Errorf("%w: rank mapping %v is not a permutation of 0…%d", ErrParam, m, ranks-1)
		}
		inv[q] = r
	}
	return inv, nil
}

// mappedTransport addresses pipeline ranks through a rank mapping.
type mappedTransport[T any] struct {
	tr  Transport[T]
	inv []int
}

// Send sends msg to pipeline rank to, which is transport rank inv[to]
// (Transport.Send with the rank mapped; its errors).
func (m mappedTransport[T]) Send(ctx context.Context, to int, tag Tag, msg T) error {
	return m.tr.Send(ctx, m.inv[to], tag, msg)
}

// Recv receives the message tagged tag from pipeline rank from, which is
// transport rank inv[from] (Transport.Recv with the rank mapped; its errors).
func (m mappedTransport[T]) Recv(ctx context.Context, from int, tag Tag) (T, error) {
	return m.tr.Recv(ctx, m.inv[from], tag)
}

// RunRank runs rank's instructions with stages[phase] as the rank's stages
// over tr: a training step with the default StepOptions (see Step). It
// returns the losses computed on this rank, sorted by pipe, then micro-batch.
func (e *Executor[T]) RunRank(ctx context.Context, rank int, stages []Stage[T], tr Transport[T]) ([]Loss, error) {
	res, err := e.Step(ctx, rank, stages, tr, StepOptions{})
	if res == nil {
		return nil, err
	}
	return res.Losses, err
}

// Step runs one step of one rank, upstream's DualPipe.step on that rank:
// rank's instructions with stages[phase] as the rank's stages over tr, with
// opts. rank is the transport rank; its pipeline rank is
// opts.RankMapping[rank] (rank itself without a mapping), whose stages
// stages must be. It fails with an error wrapping ErrWeightStore if the FIFO
// weight-gradient store pops an unexpected entry or is not empty at the end,
// with ErrParam if the arguments do not fit the program (including a nil
// stage or transport, or a bad rank mapping), with ErrSchedule if one of the
// rank's compute instructions names a kind, phase or micro-batch outside the
// schedule, and with any error of a stage, the criterion, the input function
// or the transport. The result holds what was computed before an error.
func (e *Executor[T]) Step(ctx context.Context, rank int, stages []Stage[T], tr Transport[T], opts StepOptions) (*StepResult[T], error) {
	p := e.Program
	if p == nil || p.Schedule == nil {
		return nil, fmt.Errorf("%w: executor has no program", ErrParam)
	}
	s := p.Schedule
	inv, err := CheckRankMapping(opts.RankMapping, s.Ranks)
	if err != nil {
		return nil, err
	}
	if opts.RankMapping != nil {
		if rank < 0 || rank >= s.Ranks {
			return nil, fmt.Errorf("%w: rank=%d outside %d ranks", ErrParam, rank, s.Ranks)
		}
		rank = opts.RankMapping[rank]
		if tr != nil {
			tr = mappedTransport[T]{tr, inv}
		}
	}
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
	if e.Input == nil || (e.Criterion == nil && !opts.ForwardOnly) {
		return nil, fmt.Errorf("%w: executor needs Input and (unless forward-only) Criterion", ErrParam)
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
	fwdOnly := opts.ForwardOnly
	if fwdOnly {
		ctx = context.WithValue(ctx, forwardOnlyKey{}, true)
	}
	pl := newPlacement(s)
	inbox := map[Tag]T{}     // received messages and local hand-offs
	outbox := map[bufKey]T{} // outputs awaiting their Send
	var wq []Action          // FIFO weight-gradient store
	res := &StepResult[T]{}
	result := func() *StepResult[T] {
		res.sort()
		return res
	}

	// route delivers the output of action a: locally, to the outbox, or to
	// the criterion on the last stage.
	route := func(a Action, out T) error {
		ref := s.Place[rank][a.Phase]
		if a.Kind == Forward && ref.Stage == s.Stages-1 {
			if opts.ReturnOutputs {
				res.Outputs = append(res.Outputs, Output[T]{ref.Pipe, a.Micro, out})
			}
			if e.Criterion == nil {
				return nil
			}
			l, g, err := e.Criterion(ref.Pipe, a.Micro, out)
			if err != nil {
				return fmt.Errorf("pipeline: criterion of pipe %d micro-batch %d: %w", ref.Pipe, a.Micro, err)
			}
			res.Losses = append(res.Losses, Loss{ref.Pipe, a.Micro, l})
			if !fwdOnly {
				inbox[Tag{a.Phase, Gradient, a.Micro}] = g
			}
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
			return result(), err
		}
		if fwdOnly && ((in.Kind == Send || in.Kind == Recv) && in.Tag.Kind == Gradient) {
			continue // an inference step moves no gradients
		}
		switch in.Kind {
		case Recv:
			if p.Batched {
				queue = append(queue, in)
			} else if err := recv(in); err != nil {
				return result(), err
			}
		case Send:
			if p.Batched {
				// Take the payload now: upstream queues the tensors themselves.
				k := bufKey{in.Peer, in.Tag}
				if _, ok := outbox[k]; !ok {
					return result(), fmt.Errorf("%w: rank %d sends %v to r%d before computing it", ErrSchedule, rank, in.Tag, in.Peer)
				}
				queue = append(queue, in)
			} else if err := send(in); err != nil {
				return result(), err
			}
		case Commit:
			// Sends never block, so posting them first and then waiting
			// for the receives completes whenever the batch can complete.
			for _, q := range queue {
				if q.Kind == Send {
					if err := send(q); err != nil {
						return result(), err
					}
				}
			}
			for _, q := range queue {
				if q.Kind == Recv {
					if err := recv(q); err != nil {
						return result(), err
					}
				}
			}
			queue = queue[:0]
		case Compute:
			o := in.Op
			var err error
			switch {
			case fwdOnly:
				// inference: no backward, no weight gradient; an F&B
				// pair runs its forward half
				if o.Kind == Forward {
					err = run(o.Action)
				}
			case o.Overlapped():
				err = overlapped(o)
			case o.Kind == BackwardWeight:
				if len(wq) == 0 || wq[0] != o.Action {
					return result(), fmt.Errorf("%w: rank %d runs %v but the oldest queued weight gradient is %v", ErrWeightStore, rank, o.Action, wq)
				}
				wq = wq[1:]
				if err = stages[o.Phase].BackwardWeight(ctx, o.Micro); err != nil {
					err = fmt.Errorf("pipeline: rank %d %v: %w", rank, o.Action, err)
				}
			default:
				err = run(o.Action)
			}
			if err != nil {
				return result(), err
			}
		}
	}
	if len(queue) != 0 {
		return result(), fmt.Errorf("%w: rank %d ends with %d uncommitted sends/receives", ErrSchedule, rank, len(queue))
	}
	if len(wq) != 0 {
		return result(), fmt.Errorf("%w: rank %d ends the step with %d queued weight gradients", ErrWeightStore, rank, len(wq))
	}
	if len(inbox) != 0 || len(outbox) != 0 {
		return result(), fmt.Errorf("%w: rank %d ends with %d unconsumed inputs and %d unsent outputs", ErrSchedule, rank, len(inbox), len(outbox))
	}
	return result(), nil
}

// RunLocal runs every rank in its own goroutine over an in-process
// ChanNetwork; stages[rank][phase] are the ranks' stages. On the first error
// it cancels the other ranks and returns that error. The losses come back
// sorted by pipe, then micro-batch. It is StepLocal with the default
// StepOptions.
func (e *Executor[T]) RunLocal(ctx context.Context, stages [][]Stage[T]) ([]Loss, error) {
	res, err := e.StepLocal(ctx, stages, StepOptions{})
	if err != nil {
		return nil, err
	}
	return res.Losses, nil
}

// StepLocal runs one step of every rank, each in its own goroutine over an
// in-process ChanNetwork, with opts; stages[q][phase] are the stages of
// pipeline rank q (with a RankMapping, the goroutine of transport rank r
// runs pipeline rank RankMapping[r]). On the first error it cancels the
// other ranks and returns that error. The result merges every rank's
// losses and outputs, sorted by pipe, then micro-batch.
func (e *Executor[T]) StepLocal(ctx context.Context, stages [][]Stage[T], opts StepOptions) (*StepResult[T], error) {
	if e.Program == nil || e.Program.Schedule == nil {
		return nil, fmt.Errorf("%w: executor has no program", ErrParam)
	}
	n := e.Program.Schedule.Ranks
	if len(stages) != n {
		return nil, fmt.Errorf("%w: got stages for %d ranks, schedule has %d", ErrParam, len(stages), n)
	}
	if _, err := CheckRankMapping(opts.RankMapping, n); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	net := NewChanNetwork[T](n)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    StepResult[T]
		errs   = make([]error, n)
		first  error
		failed bool
	)
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			q := r
			if opts.RankMapping != nil {
				q = opts.RankMapping[r]
			}
			res, err := e.Step(ctx, r, stages[q], net.Endpoint(r), opts)
			mu.Lock()
			defer mu.Unlock()
			if res != nil {
				all.Losses = append(all.Losses, res.Losses...)
				all.Outputs = append(all.Outputs, res.Outputs...)
			}
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
	all.sort()
	return &all, nil
}

// sort orders the result's losses and outputs by pipe, then micro-batch
// (stable: entries with equal keys keep their order).
func (r *StepResult[T]) sort() {
	sortByPipeMicro(r.Losses, func(l Loss) (int, int) { return l.Pipe, l.Micro })
	sortByPipeMicro(r.Outputs, func(o Output[T]) (int, int) { return o.Pipe, o.Micro })
}

func sortByPipeMicro[E any](xs []E, key func(E) (pipe, micro int)) {
	sort.SliceStable(xs, func(i, j int) bool {
		ap, am := key(xs[i])
		bp, bm := key(xs[j])
		return ap < bp || (ap == bp && am < bm)
	})
}
