package pipeline

import (
	"fmt"
	"slices"
)

// LowerReference lowers s into a Batched program in upstream DualPipe's
// posting order (dualpipe.py / dualpipev.py: _forward_chunk, _backward_chunk,
// _forward_backward_chunk, _weight_chunk, _commit_and_wait_comm): the
// receives an op needs are queued before it and committed, with every send
// queued since, right before the op runs; its sends are queued after it and
// go out at the next commit (a W also commits). It keeps upstream's
// deliberate deviations: in step 2 the next forward input of phase 0 is
// received ahead of the phase-1 forward, and non-middle ranks send the
// phase-0 output only after that forward (the middle ranks send it at once
// and hold their last phase-1 output back until step 4); in step 3 the
// phase-1 receive is posted before the W so the transfer overlaps it; the
// middle ranks' first step-4 forward and backward send nothing until both
// ran.
//
// For 1F1B and ZB1P, which have no upstream DualPipe code, the same helper
// pattern applies op by op: queue receives, commit, compute, queue sends.
// The compute order is always s's op order.
func LowerReference(s *Schedule) (*Program, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := &Program{Schedule: s, Ranks: make([][]Instr, s.Ranks), Batched: true}
	pl := newPlacement(s)
	for r := range s.Ops {
		e := &refEmitter{s: s, pl: pl, rank: r}
		switch s.Method {
		case MethodDualPipe, MethodDualPipeV:
			H, h := s.Ranks/2, min(r, s.Ranks-1-r)
			if s.Method == MethodDualPipeV {
				H, h = s.Ranks, r
			} else if r >= H {
				e.x = 1
			}
			e.dual(H, h, s.Micro)
		default:
			e.generic(s.Ops[r])
		}
		e.commit()
		var ops []Op
		for _, in := range e.prog {
			if in.Kind == Compute {
				ops = append(ops, in.Op)
			}
		}
		if !slices.Equal(ops, s.Ops[r]) {
			return nil, fmt.Errorf("%w: rank %d: %s op order is not upstream's", ErrSchedule, r, s.Method)
		}
		p.Ranks[r] = e.prog
	}
	return p, nil
}

// refEmitter replays upstream's per-rank helpers and records instructions.
type refEmitter struct {
	s      *Schedule
	pl     placement
	rank   int
	x      int // 1 on DualPipe's second half: step phase p is actual phase p^1
	prog   []Instr
	queued int
	fc, bc [2]int
	sendF  [2]int
	sendB  [2]int
	recvF  [2]int
	recvB  [2]int
	wq     []Action
}

func (e *refEmitter) ref(a int) StageRef { return e.s.Place[e.rank][a] }

func (e *refEmitter) comm(kind InstrKind, peer int, t Tag) {
	e.prog = append(e.prog, Instr{Kind: kind, Peer: peer, Tag: t})
	e.queued++
}

func (e *refEmitter) commit() {
	if e.queued > 0 {
		e.prog = append(e.prog, Instr{Kind: Commit})
		e.queued = 0
	}
}

// neighbour returns where the stage step (+1 or −1) along phase a's pipe
// from this rank's stage of that phase is placed, or false when there is no
// such stage or it is on this rank (the turn of DualPipeV's V is handed over
// locally and needs no message).
func (e *refEmitter) neighbour(a, step int) (endpoint, bool) {
	ref := e.ref(a)
	if next := ref.Stage + step; next >= 0 && next < e.s.Stages {
		if ep := e.pl.at(StageRef{ref.Pipe, next}); ep.rank != e.rank {
			return ep, true
		}
	}
	return endpoint{}, false
}

func (e *refEmitter) recvForward(p int) {
	a := p ^ e.x
	if src, ok := e.neighbour(a, -1); ok {
		e.comm(Recv, src.rank, Tag{a, Activation, e.recvF[a]})
		e.recvF[a]++
	}
}

func (e *refEmitter) sendForward(p int) {
	a := p ^ e.x
	if dst, ok := e.neighbour(a, +1); ok {
		e.comm(Send, dst.rank, Tag{dst.phase, Activation, e.sendF[a]})
		e.sendF[a]++
	}
}

func (e *refEmitter) recvBackward(p int) {
	a := p ^ e.x
	if src, ok := e.neighbour(a, +1); ok {
		e.comm(Recv, src.rank, Tag{a, Gradient, e.recvB[a]})
		e.recvB[a]++
	}
}

func (e *refEmitter) sendBackward(p int) {
	a := p ^ e.x
	if dst, ok := e.neighbour(a, -1); ok {
		e.comm(Send, dst.rank, Tag{dst.phase, Gradient, e.sendB[a]})
		e.sendB[a]++
	}
}

func (e *refEmitter) fwdAction(p int) Action {
	a := p ^ e.x
	act := Action{Forward, a, e.fc[a]}
	e.fc[a]++
	return act
}

func (e *refEmitter) bwdAction(p int, zb bool) Action {
	a := p ^ e.x
	act := Action{Backward, a, e.bc[a]}
	e.bc[a]++
	if zb {
		act.Kind = BackwardInput
		e.wq = append(e.wq, Action{BackwardWeight, a, act.Micro})
	}
	return act
}

func (e *refEmitter) compute(o Op) { e.prog = append(e.prog, Instr{Kind: Compute, Op: o}) }

func (e *refEmitter) forwardChunk(p int, recv, send bool) {
	if recv {
		e.recvForward(p)
	}
	e.commit()
	e.compute(Op{Action: e.fwdAction(p)})
	if send {
		e.sendForward(p)
	}
}

func (e *refEmitter) backwardChunk(p int, zb, recv, send bool) {
	if recv {
		e.recvBackward(p)
	}
	e.commit()
	e.compute(Op{Action: e.bwdAction(p, zb)})
	if send {
		e.sendBackward(p)
	}
}

func (e *refEmitter) forwardBackwardChunk(p0, p1 int, recv0 bool) {
	if recv0 {
		e.recvForward(p0)
	}
	e.recvBackward(p1)
	e.commit()
	f := e.fwdAction(p0)
	e.compute(Op{Action: f, With: e.bwdAction(p1, false)})
	e.sendForward(p0)
	e.sendBackward(p1)
}

func (e *refEmitter) weightChunk() {
	e.commit()
	w := e.wq[0]
	e.wq = e.wq[1:]
	e.compute(Op{Action: w})
}

// dual replays the eight steps of DualPipe.step / DualPipeV.step.
func (e *refEmitter) dual(H, h, halfC int) {
	middle := h == H-1
	for i := 0; i < 2*(H-h-1); i++ {
		e.forwardChunk(0, true, true)
	}
	s2 := h + 1
	e.recvForward(0)
	for i := 0; i < s2; i++ {
		e.forwardChunk(0, false, middle)
		e.recvForward(0)
		e.forwardChunk(1, true, !middle || i < s2-1)
		if !middle {
			e.sendForward(0)
		}
	}
	for i := 0; i < H-h-1; i++ {
		e.backwardChunk(1, true, true, true)
		e.recvForward(1)
		e.weightChunk()
		e.forwardChunk(1, false, true)
	}
	for i := 0; i < halfC-2*H+h+1; i++ {
		switch {
		case i == 0 && middle:
			e.forwardChunk(0, false, false)
			e.sendForward(1)
			e.backwardChunk(1, false, true, false)
			e.sendForward(0)
			e.sendBackward(1)
		case i == 0:
			e.forwardBackwardChunk(0, 1, false)
		default:
			e.forwardBackwardChunk(0, 1, true)
		}
		e.forwardBackwardChunk(1, 0, true)
	}
	for i := 0; i < H-h-1; i++ {
		e.backwardChunk(1, false, true, true)
		e.forwardBackwardChunk(1, 0, true)
	}
	s6, zb := h+1, false
	for i := 0; i < s6; i++ {
		if i == s6/2 && h%2 == 1 {
			zb = true
		}
		e.backwardChunk(1, zb, true, true)
		if i == s6/2 && h%2 == 0 {
			zb = true
		}
		e.backwardChunk(0, zb, true, true)
	}
	for i := 0; i < H-h-1; i++ {
		e.weightChunk()
		e.backwardChunk(0, true, true, true)
	}
	for i := 0; i < h+1; i++ {
		e.weightChunk()
	}
}

// generic applies the helper pattern to any op list (1F1B, ZB1P).
func (e *refEmitter) generic(ops []Op) {
	for _, o := range ops {
		switch {
		case o.Overlapped():
			e.forwardBackwardChunk(o.Phase, o.With.Phase, true)
		case o.Kind == Forward:
			e.forwardChunk(o.Phase, true, true)
		case o.Kind == BackwardWeight:
			e.weightChunk()
		default:
			e.backwardChunk(o.Phase, o.Kind == BackwardInput, true, true)
		}
	}
}
