package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Errors returned by this package. Every error wraps one of these, so
// errors.Is works at every layer.
var (
	// ErrParam: a generator or simulator parameter breaks a rule (the message
	// names the parameter and the rule).
	ErrParam = errors.New("pipeline: invalid parameter")
	// ErrSchedule: a schedule is malformed (an op is missing, doubled, out of
	// dependency order on its rank, or names an unknown phase).
	ErrSchedule = errors.New("pipeline: invalid schedule")
	// ErrDeadlock: the ranks of a schedule or program wait on each other forever.
	ErrDeadlock = errors.New("pipeline: deadlock")
	// ErrUnmatched: a send has no receive or a receive has no send.
	ErrUnmatched = errors.New("pipeline: unmatched message")
	// ErrWeightStore: the FIFO weight-gradient store popped an unexpected entry
	// or was not empty at the end of a step.
	ErrWeightStore = errors.New("pipeline: weight-gradient store")
	// ErrSyntax: an op string could not be parsed.
	ErrSyntax = errors.New("pipeline: syntax error")
)

// Kind is the kind of one compute action.
type Kind uint8

// The compute action kinds. They mirror upstream DualPipe's
// _forward_chunk, _backward_chunk(enable_zb=False), _backward_chunk(enable_zb=True)
// and _weight_chunk.
const (
	// Forward (F) runs a stage forward on one micro-batch and keeps its activations.
	Forward Kind = iota + 1
	// Backward (B) runs the full backward: input gradient and weight gradient.
	Backward
	// BackwardInput (b) computes the input gradient only; the weight gradient
	// is pushed to the rank's FIFO weight-gradient store.
	BackwardInput
	// BackwardWeight (W) pops the oldest entry of the weight-gradient store and
	// computes that weight gradient.
	BackwardWeight
)

// String returns the one-letter name used in op lines: F, B, b or W.
func (k Kind) String() string {
	switch k {
	case Forward:
		return "F"
	case Backward:
		return "B"
	case BackwardInput:
		return "b"
	case BackwardWeight:
		return "W"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// IsBackward reports whether k produces an input gradient (B or b).
func (k Kind) IsBackward() bool { return k == Backward || k == BackwardInput }

// Action is one compute action of one rank: its kind, the rank-local phase
// (which of the rank's stages runs it) and the micro-batch index within the
// stage's pipe.
type Action struct {
	Kind  Kind // F, B, b or W
	Phase int  // index into Schedule.Place[rank]
	Micro int  // micro-batch index within the stage's pipe
}

// String formats a as <kind><phase>.<micro-batch>, e.g. "F0.3" or "b1.2".
func (a Action) String() string {
	return a.Kind.String() + strconv.Itoa(a.Phase) + "." + strconv.Itoa(a.Micro)
}

// Op is one entry of a rank's op list: a single action, or an overlapped pair
// (upstream's _forward_backward_chunk) of a forward Action and a full
// backward With, run together so that one's communication hides behind the
// other's compute.
type Op struct {
	Action
	// With is the backward half of an overlapped pair; its Kind is zero for a
	// single action.
	With Action
}

// Overlapped reports whether o is an overlapped forward&backward pair.
func (o Op) Overlapped() bool { return o.With.Kind != 0 }

// Actions returns the op's actions in execution order (forward first for a pair).
func (o Op) Actions() []Action {
	if o.Overlapped() {
		return []Action{o.Action, o.With}
	}
	return []Action{o.Action}
}

// String formats o as in `fireflyer schedule --text`: "F0.3", or
// "F0.3&B1.1" for an overlapped pair.
func (o Op) String() string {
	if o.Overlapped() {
		return o.Action.String() + "&" + o.With.String()
	}
	return o.Action.String()
}

// ParseOp parses the String form of an Op. It returns an error wrapping
// ErrSyntax for anything else.
func ParseOp(s string) (Op, error) {
	f, b, pair := strings.Cut(s, "&")
	a, err := parseAction(f)
	if err != nil {
		return Op{}, err
	}
	op := Op{Action: a}
	if pair {
		w, err := parseAction(b)
		if err != nil {
			return Op{}, err
		}
		if a.Kind != Forward || w.Kind != Backward {
			return Op{}, fmt.Errorf("%w: overlapped pair %q must be F&B", ErrSyntax, s)
		}
		op.With = w
	}
	return op, nil
}

func parseAction(s string) (Action, error) {
	if len(s) < 4 {
		return Action{}, fmt.Errorf("%w: op %q is not <kind><phase>.<micro-batch>", ErrSyntax, s)
	}
	var k Kind
	switch s[0] {
	case 'F':
		k = Forward
	case 'B':
		k = Backward
	case 'b':
		k = BackwardInput
	case 'W':
		k = BackwardWeight
	default:
		return Action{}, fmt.Errorf("%w: op %q has unknown kind %q", ErrSyntax, s, s[0])
	}
	ph, mb, ok := strings.Cut(s[1:], ".")
	if !ok {
		return Action{}, fmt.Errorf("%w: op %q is not <kind><phase>.<micro-batch>", ErrSyntax, s)
	}
	p, err1 := strconv.Atoi(ph)
	m, err2 := strconv.Atoi(mb)
	if err1 != nil || err2 != nil || p < 0 || m < 0 || ph != strconv.Itoa(p) || mb != strconv.Itoa(m) {
		return Action{}, fmt.Errorf("%w: op %q has a bad phase or micro-batch number", ErrSyntax, s)
	}
	return Action{Kind: k, Phase: p, Micro: m}, nil
}

// Method names a schedule generator.
type Method string

// The generators of this package.
const (
	Method1F1B      Method = "1f1b"
	MethodZB1P      Method = "zb1p"
	MethodDualPipe  Method = "dualpipe"
	MethodDualPipeV Method = "dualpipev"
)

// StageRef locates one pipeline stage: Pipe is the independent data path
// (DualPipe's direction 0 or 1; 0 for the other methods) and Stage its
// position along that path, 0 being where micro-batches enter.
type StageRef struct {
	Pipe  int // data path: DualPipe's direction, else 0
	Stage int // position along the path, 0 first
}

// Schedule is a pipeline schedule as plain data: per rank, the ordered list
// of ops, and where each rank-local phase sits in the pipeline(s).
//
// Micro-batch numbers are per pipe: 0..Micro−1. A forward F(pipe, s, m)
// consumes the output of F(pipe, s−1, m); a backward of (pipe, s, m)
// consumes the input gradient of the backward of (pipe, s+1, m) and the
// activations of F(pipe, s, m); the last stage's backward starts from the loss.
type Schedule struct {
	// Method is the generator that built the schedule.
	Method Method
	// Ranks is the number of devices; Chunks the number of micro-batches per
	// step as given to the generator (DualPipe splits them over its two pipes).
	Ranks, Chunks int
	// Pipes is the number of independent data paths (2 for DualPipe, else 1),
	// Stages the number of stages on each path and Micro the number of
	// micro-batches that go down each path.
	Pipes, Stages, Micro int
	// Place[rank][phase] is the stage the rank runs for that phase.
	Place [][]StageRef
	// Ops[rank] is the rank's op list in execution order.
	Ops [][]Op
}

// Locate returns the rank and phase that run stage ref, or ok=false.
func (s *Schedule) Locate(ref StageRef) (rank, phase int, ok bool) {
	for r, ps := range s.Place {
		for p, x := range ps {
			if x == ref {
				return r, p, true
			}
		}
	}
	return 0, 0, false
}

// Lines returns the op list of every rank in the --text format,
// "r<rank>: <op> <op> ...", one string per rank in rank order.
func (s *Schedule) Lines() []string {
	out := make([]string, len(s.Ops))
	for r, ops := range s.Ops {
		var sb strings.Builder
		sb.WriteString("r")
		sb.WriteString(strconv.Itoa(r))
		sb.WriteString(":")
		for _, o := range ops {
			sb.WriteByte(' ')
			sb.WriteString(o.String())
		}
		out[r] = sb.String()
	}
	return out
}

// actKey identifies an action globally: the stage it runs on, the
// micro-batch, and whether it is the forward (0), the input-gradient
// backward (1: B or b) or the weight gradient (2: W).
type actKey struct {
	ref   StageRef
	micro int
	part  int
}

func part(k Kind) int {
	switch k {
	case Forward:
		return 0
	case Backward, BackwardInput:
		return 1
	}
	return 2
}

func (s *Schedule) key(rank int, a Action) actKey {
	return actKey{ref: s.Place[rank][a.Phase], micro: a.Micro, part: part(a.Kind)}
}

// deps returns the actions a depends on (forward: previous stage's forward;
// backward: next stage's backward and own forward; W: own b).
func (s *Schedule) deps(k actKey, kind Kind) []actKey {
	var d []actKey
	switch k.part {
	case 0:
		if k.ref.Stage > 0 {
			d = append(d, actKey{StageRef{k.ref.Pipe, k.ref.Stage - 1}, k.micro, 0})
		}
	case 1:
		if k.ref.Stage < s.Stages-1 {
			d = append(d, actKey{StageRef{k.ref.Pipe, k.ref.Stage + 1}, k.micro, 1})
		}
		d = append(d, actKey{k.ref, k.micro, 0})
	case 2:
		d = append(d, actKey{k.ref, k.micro, 1})
	}
	return d
}

// Validate checks that s is well formed: every rank's phases are placed on
// distinct stages; every (stage, micro-batch) has exactly one forward and one
// backward on the rank holding the stage; a b is followed by exactly one W
// for it, and a B has none; W ops pop the weight-gradient store in FIFO
// order; and each action comes after the actions it depends on that run on
// the same rank. It returns an error wrapping ErrSchedule.
func (s *Schedule) Validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil schedule", ErrSchedule)
	}
	if s.Ranks <= 0 || len(s.Ops) != s.Ranks || len(s.Place) != s.Ranks {
		return fmt.Errorf("%w: %d op lists and %d placements for %d ranks", ErrSchedule, len(s.Ops), len(s.Place), s.Ranks)
	}
	if s.Pipes <= 0 || s.Stages <= 0 || s.Micro <= 0 {
		return fmt.Errorf("%w: pipes=%d stages=%d micro=%d must be positive", ErrSchedule, s.Pipes, s.Stages, s.Micro)
	}
	if s.Stages > math.MaxInt/s.Pipes {
		return fmt.Errorf("%w: pipes=%d × stages=%d overflows int", ErrSchedule, s.Pipes, s.Stages)
	}
	seen := map[StageRef]bool{}
	rankOf := map[StageRef]int{}
	for r, ps := range s.Place {
		for p, ref := range ps {
			if ref.Pipe < 0 || ref.Pipe >= s.Pipes || ref.Stage < 0 || ref.Stage >= s.Stages {
				return fmt.Errorf("%w: rank %d phase %d placed on stage %v outside %d pipes × %d stages", ErrSchedule, r, p, ref, s.Pipes, s.Stages)
			}
			if seen[ref] {
				return fmt.Errorf("%w: stage %v placed twice", ErrSchedule, ref)
			}
			seen[ref] = true
			rankOf[ref] = r
		}
	}
	if len(seen) != s.Pipes*s.Stages {
		return fmt.Errorf("%w: %d of %d stages placed", ErrSchedule, len(seen), s.Pipes*s.Stages)
	}
	done := map[actKey]Kind{}
	for r, ops := range s.Ops {
		var fifo []actKey
		for i, o := range ops {
			if o.Overlapped() && (o.Kind != Forward || o.With.Kind != Backward) {
				return fmt.Errorf("%w: rank %d op %d %v: an overlapped pair is F&B", ErrSchedule, r, i, o)
			}
			for _, a := range o.Actions() {
				if a.Phase < 0 || a.Phase >= len(s.Place[r]) || a.Micro < 0 || a.Micro >= s.Micro || a.Kind < Forward || a.Kind > BackwardWeight {
					return fmt.Errorf("%w: rank %d op %d %v: bad kind, phase or micro-batch", ErrSchedule, r, i, a)
				}
				k := s.key(r, a)
				if _, dup := done[k]; dup {
					return fmt.Errorf("%w: rank %d op %d %v runs twice", ErrSchedule, r, i, a)
				}
				for _, d := range s.deps(k, a.Kind) {
					if _, ok := done[d]; !ok && rankOf[d.ref] == r {
						return fmt.Errorf("%w: rank %d op %d %v runs before a local action it needs", ErrSchedule, r, i, a)
					}
				}
				switch a.Kind {
				case BackwardInput:
					fifo = append(fifo, actKey{k.ref, k.micro, 2})
				case BackwardWeight:
					if len(fifo) == 0 || fifo[0] != k {
						return fmt.Errorf("%w: rank %d op %d %v is not the oldest queued weight gradient", ErrSchedule, r, i, a)
					}
					fifo = fifo[1:]
				}
				done[k] = a.Kind
			}
		}
		if len(fifo) != 0 {
			return fmt.Errorf("%w: rank %d ends with %d queued weight gradients", ErrSchedule, r, len(fifo))
		}
	}
	for ref := range seen {
		for m := 0; m < s.Micro; m++ {
			if _, ok := done[actKey{ref, m, 0}]; !ok {
				return fmt.Errorf("%w: no forward for stage %v micro-batch %d", ErrSchedule, ref, m)
			}
			b, ok := done[actKey{ref, m, 1}]
			if !ok {
				return fmt.Errorf("%w: no backward for stage %v micro-batch %d", ErrSchedule, ref, m)
			}
			if _, w := done[actKey{ref, m, 2}]; b == Backward && w {
				return fmt.Errorf("%w: stage %v micro-batch %d has B and W", ErrSchedule, ref, m)
			}
		}
	}
	return nil
}
