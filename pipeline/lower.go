package pipeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// MsgKind says what a point-to-point message carries.
type MsgKind uint8

// Message kinds.
const (
	// Activation is a forward output sent to the next stage.
	Activation MsgKind = iota + 1
	// Gradient is an input gradient sent back to the previous stage.
	Gradient
)

// String returns "act" or "grad".
func (k MsgKind) String() string {
	switch k {
	case Activation:
		return "act"
	case Gradient:
		return "grad"
	}
	return "MsgKind(" + strconv.Itoa(int(k)) + ")"
}

// Tag names a message between two ranks: the receiver's phase, the kind and
// the micro-batch. Messages are matched by (sender, receiver, Tag), never by
// issue order (upstream's NCCL batch_isend_irecv matches by order).
type Tag struct {
	Phase int     // the receiving rank's phase that consumes the message
	Kind  MsgKind // activation or gradient
	Micro int     // micro-batch index within its pipe
}

// String formats t as <kind><phase>.<micro-batch>, e.g. "act0.3".
func (t Tag) String() string {
	return t.Kind.String() + strconv.Itoa(t.Phase) + "." + strconv.Itoa(t.Micro)
}

// InstrKind is the kind of one lowered instruction.
type InstrKind uint8

// Instruction kinds.
const (
	// Compute runs an Op.
	Compute InstrKind = iota + 1
	// Send posts a message to Peer; it never blocks (the message is buffered).
	Send
	// Recv waits for the message Tag from Peer.
	Recv
	// Commit, in a batched program, posts every Send and Recv since the
	// previous Commit as one batch and waits until all of them complete
	// (upstream's _commit_and_wait_comm: batch_isend_irecv, then wait).
	Commit
)

// Instr is one instruction of a lowered rank program.
type Instr struct {
	Kind InstrKind // what the instruction does
	Op   Op        // Compute only
	Peer int       // Send and Recv: the other rank
	Tag  Tag       // Send and Recv
}

// String formats i as "F0.3", "send(r1,act0.3)", "recv(r0,grad1.2)" or
// "commit".
func (i Instr) String() string {
	switch i.Kind {
	case Commit:
		return "commit"
	case Send:
		return "send(r" + strconv.Itoa(i.Peer) + "," + i.Tag.String() + ")"
	case Recv:
		return "recv(r" + strconv.Itoa(i.Peer) + "," + i.Tag.String() + ")"
	}
	return i.Op.String()
}

// Program is a schedule lowered to per-rank instruction lists with explicit
// point-to-point sends and receives.
type Program struct {
	// Schedule is the schedule the program was lowered from.
	Schedule *Schedule
	// Ranks[r] is rank r's instruction list.
	Ranks [][]Instr
	// Batched programs (LowerReference) only queue Send and Recv; each
	// Commit posts the queue and waits for all of it. Otherwise a Send
	// posts at once without waiting and a Recv waits for its message.
	Batched bool
}

// endpoint is where an action's input comes from or its output goes to.
type endpoint struct {
	rank  int
	phase int
	ok    bool
}

type placement struct {
	s   *Schedule
	loc map[StageRef][2]int
}

func newPlacement(s *Schedule) placement {
	p := placement{s: s, loc: map[StageRef][2]int{}}
	for r, ps := range s.Place {
		for ph, ref := range ps {
			p.loc[ref] = [2]int{r, ph}
		}
	}
	return p
}

func (p placement) at(ref StageRef) endpoint {
	l, ok := p.loc[ref]
	return endpoint{l[0], l[1], ok}
}

// producer returns where action a on rank r takes its remote-able input from
// (the previous stage for F, the next stage for B/b) and the message kind.
func (p placement) producer(r int, a Action) (endpoint, MsgKind) {
	ref := p.s.Place[r][a.Phase]
	switch a.Kind {
	case Forward:
		if ref.Stage > 0 {
			return p.at(StageRef{ref.Pipe, ref.Stage - 1}), Activation
		}
	case Backward, BackwardInput:
		if ref.Stage < p.s.Stages-1 {
			return p.at(StageRef{ref.Pipe, ref.Stage + 1}), Gradient
		}
	}
	return endpoint{}, 0
}

// consumer returns where action a's output goes and the message kind.
func (p placement) consumer(r int, a Action) (endpoint, MsgKind) {
	ref := p.s.Place[r][a.Phase]
	switch a.Kind {
	case Forward:
		if ref.Stage < p.s.Stages-1 {
			return p.at(StageRef{ref.Pipe, ref.Stage + 1}), Activation
		}
	case Backward, BackwardInput:
		if ref.Stage > 0 {
			return p.at(StageRef{ref.Pipe, ref.Stage - 1}), Gradient
		}
	}
	return endpoint{}, 0
}

// Lower validates s and adds the point-to-point messages: before each op, a
// Recv for every input produced on another rank (the forward's activation
// first, then the backward's gradient, as upstream's
// _forward_backward_chunk posts them); after it, a Send for every output
// consumed on another rank. Hand-offs between two phases of one rank (the
// turn of DualPipeV's V on its last rank) stay local and need no message.
func Lower(s *Schedule) (*Program, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	pl := newPlacement(s)
	p := &Program{Schedule: s, Ranks: make([][]Instr, s.Ranks)}
	for r, ops := range s.Ops {
		var prog []Instr
		for _, o := range ops {
			for _, a := range o.Actions() {
				if e, k := pl.producer(r, a); e.ok && e.rank != r {
					prog = append(prog, Instr{Kind: Recv, Peer: e.rank, Tag: Tag{a.Phase, k, a.Micro}})
				}
			}
			prog = append(prog, Instr{Kind: Compute, Op: o})
			for _, a := range o.Actions() {
				if e, k := pl.consumer(r, a); e.ok && e.rank != r {
					prog = append(prog, Instr{Kind: Send, Peer: e.rank, Tag: Tag{e.phase, k, a.Micro}})
				}
			}
		}
		p.Ranks[r] = prog
	}
	return p, nil
}

// Lines returns each rank's instructions, "r<rank>: <instr> <instr> ...".
func (p *Program) Lines() []string {
	out := make([]string, len(p.Ranks))
	for r, prog := range p.Ranks {
		parts := make([]string, 0, len(prog)+1)
		parts = append(parts, "r"+strconv.Itoa(r)+":")
		for _, in := range prog {
			parts = append(parts, in.String())
		}
		out[r] = strings.Join(parts, " ")
	}
	return out
}

// opAt formats ops[i], or "none" past the end.
func opAt(ops []Op, i int) string {
	if i < len(ops) {
		return ops[i].String()
	}
	return "none"
}

type msgKey struct {
	from, to int
	tag      Tag
}

// Check proves that p can run to completion under its semantics: in a plain
// program sends are buffered and receives block (this package's transports);
// in a Batched program each Commit posts its queued sends and receives and
// waits until every one of them is matched by an op the peer has posted
// (upstream's batch_isend_irecv followed by wait on every request). It checks:
//   - its Schedule is valid (Validate) and each rank computes exactly the
//     schedule's ops, in order (else ErrSchedule);
//   - every Send has exactly one matching Recv (same sender, receiver and
//     Tag) and every Recv one Send (else an error wrapping ErrUnmatched);
//   - every compute action finds its remote input already received, every
//     Send its output already computed, and no Send or Recv of a batched
//     program is left uncommitted (else ErrSchedule);
//   - replaying all ranks, no rank waits forever (else ErrDeadlock, naming
//     what each stuck rank waits for).
func (p *Program) Check() error {
	if p == nil {
		return fmt.Errorf("%w: nil program", ErrSchedule)
	}
	s := p.Schedule
	if s == nil || len(p.Ranks) != s.Ranks {
		return fmt.Errorf("%w: program has %d ranks and no matching schedule", ErrSchedule, len(p.Ranks))
	}
	if err := s.Validate(); err != nil {
		return err
	}
	sends, recvs := map[msgKey]int{}, map[msgKey]int{}
	for r, prog := range p.Ranks {
		queued, next := 0, 0
		for i, in := range prog {
			switch in.Kind {
			case Compute:
				if next >= len(s.Ops[r]) || in.Op != s.Ops[r][next] {
					return fmt.Errorf("%w: rank %d instruction %d computes %v, the schedule's next op is %s", ErrSchedule, r, i, in.Op, opAt(s.Ops[r], next))
				}
				next++
			case Send, Recv, Commit:
			default:
				return fmt.Errorf("%w: rank %d instruction %d has kind %d", ErrSchedule, r, i, in.Kind)
			}
			switch in.Kind {
			case Send:
				sends[msgKey{r, in.Peer, in.Tag}]++
				queued++
			case Recv:
				recvs[msgKey{in.Peer, r, in.Tag}]++
				queued++
			case Commit:
				queued = 0
			}
		}
		if next != len(s.Ops[r]) {
			return fmt.Errorf("%w: rank %d computes %d of the schedule's %d ops", ErrSchedule, r, next, len(s.Ops[r]))
		}
		if p.Batched && queued > 0 {
			return fmt.Errorf("%w: rank %d ends with %d sends/receives never committed", ErrSchedule, r, queued)
		}
	}
	var bad []string
	for k, n := range sends {
		if n != 1 || recvs[k] != 1 {
			bad = append(bad, fmt.Sprintf("r%d→r%d %v sent %d× received %d×", k.from, k.to, k.tag, n, recvs[k]))
		}
	}
	for k, n := range recvs {
		if sends[k] == 0 {
			bad = append(bad, fmt.Sprintf("r%d→r%d %v received %d× never sent", k.from, k.to, k.tag, n))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: %s", ErrUnmatched, strings.Join(bad, "; "))
	}

	pl := newPlacement(s)
	postedSend, postedRecv := map[msgKey]bool{}, map[msgKey]bool{}
	got := make([]map[Tag]bool, s.Ranks) // messages received, per rank
	ready := map[msgKey]bool{}           // outputs computed, awaiting send
	type queued struct {
		key  msgKey
		recv bool
	}
	batch := make([][]queued, s.Ranks)
	posted := make([]bool, s.Ranks) // the rank's current batch is posted
	for r := range got {
		got[r] = map[Tag]bool{}
	}
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
				case Recv:
					k := msgKey{in.Peer, r, in.Tag}
					if p.Batched {
						batch[r] = append(batch[r], queued{k, true})
						break
					}
					postedRecv[k] = true
					if !postedSend[k] {
						break rank
					}
					got[r][in.Tag] = true
				case Send:
					k := msgKey{r, in.Peer, in.Tag}
					if !ready[k] {
						return fmt.Errorf("%w: rank %d sends %v to r%d before computing it", ErrSchedule, r, in.Tag, in.Peer)
					}
					delete(ready, k)
					if p.Batched {
						batch[r] = append(batch[r], queued{k, false})
						break
					}
					postedSend[k] = true
				case Commit:
					if !posted[r] {
						for _, q := range batch[r] {
							if q.recv {
								postedRecv[q.key] = true
							} else {
								postedSend[q.key] = true
							}
						}
						posted[r] = true
						progress = true
					}
					for _, q := range batch[r] {
						if q.recv && !postedSend[q.key] || !q.recv && !postedRecv[q.key] {
							break rank
						}
					}
					for _, q := range batch[r] {
						if q.recv {
							got[r][q.key.tag] = true
						}
					}
					batch[r], posted[r] = batch[r][:0], false
				case Compute:
					for _, a := range in.Op.Actions() {
						if e, kind := pl.producer(r, a); e.ok && e.rank != r {
							t := Tag{a.Phase, kind, a.Micro}
							if !got[r][t] {
								return fmt.Errorf("%w: rank %d runs %v before receiving %v from r%d", ErrSchedule, r, a, t, e.rank)
							}
							delete(got[r], t)
						}
						if e, kind := pl.consumer(r, a); e.ok && e.rank != r {
							ready[msgKey{r, e.rank, Tag{e.phase, kind, a.Micro}}] = true
						}
					}
				default:
					return fmt.Errorf("%w: rank %d instruction %d has kind %d", ErrSchedule, r, pc[r], in.Kind)
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
					w := prog[pc[r]].String()
					if prog[pc[r]].Kind == Commit {
						var open []string
						for _, q := range batch[r] {
							if q.recv && !postedSend[q.key] {
								open = append(open, fmt.Sprintf("recv(r%d,%v)", q.key.from, q.key.tag))
							} else if !q.recv && !postedRecv[q.key] {
								open = append(open, fmt.Sprintf("send(r%d,%v)", q.key.to, q.key.tag))
							}
						}
						w += " [" + strings.Join(open, " ") + "]"
					}
					waits = append(waits, fmt.Sprintf("r%d waits at %s", r, w))
				}
			}
			return fmt.Errorf("%w: %s", ErrDeadlock, strings.Join(waits, "; "))
		}
	}
	return nil
}
