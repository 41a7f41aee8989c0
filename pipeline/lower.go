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
	Phase int
	Kind  MsgKind
	Micro int
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
)

// Instr is one instruction of a lowered rank program.
type Instr struct {
	Kind InstrKind
	Op   Op  // Compute only
	Peer int // Send and Recv: the other rank
	Tag  Tag // Send and Recv
}

// String formats i as "F0.3", "send(r1,act0.3)" or "recv(r0,grad1.2)".
func (i Instr) String() string {
	switch i.Kind {
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
	Schedule *Schedule
	// Ranks[r] is rank r's instruction list.
	Ranks [][]Instr
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

type msgKey struct {
	from, to int
	tag      Tag
}

// Check proves that p can run to completion when sends are buffered and
// receives block (the semantics of this package's transports):
//   - every Send has exactly one matching Recv (same sender, receiver and
//     Tag) and every Recv one Send (else an error wrapping ErrUnmatched);
//   - every compute action finds its remote input already received, and
//     every Send its output already computed (else ErrSchedule);
//   - replaying all ranks, no rank waits forever (else ErrDeadlock, naming
//     what each stuck rank waits for).
func (p *Program) Check() error {
	s := p.Schedule
	if s == nil || len(p.Ranks) != s.Ranks {
		return fmt.Errorf("%w: program has %d ranks and no matching schedule", ErrSchedule, len(p.Ranks))
	}
	sends, recvs := map[msgKey]int{}, map[msgKey]int{}
	for r, prog := range p.Ranks {
		for _, in := range prog {
			switch in.Kind {
			case Send:
				sends[msgKey{r, in.Peer, in.Tag}]++
			case Recv:
				recvs[msgKey{in.Peer, r, in.Tag}]++
			}
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
	posted := map[msgKey]bool{}
	got := make([]map[Tag]bool, s.Ranks) // messages received, per rank
	ready := map[msgKey]bool{}           // outputs computed, awaiting send
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
					if !posted[k] {
						break rank
					}
					got[r][in.Tag] = true
				case Send:
					k := msgKey{r, in.Peer, in.Tag}
					if !ready[k] {
						return fmt.Errorf("%w: rank %d sends %v to r%d before computing it", ErrSchedule, r, in.Tag, in.Peer)
					}
					delete(ready, k)
					posted[k] = true
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
					waits = append(waits, fmt.Sprintf("r%d waits at %v", r, prog[pc[r]]))
				}
			}
			return fmt.Errorf("%w: %s", ErrDeadlock, strings.Join(waits, "; "))
		}
	}
	return nil
}
