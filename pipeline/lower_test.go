package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// checkAllMethods lowers every method on each rank count of ns with 2n,
// 2n+2 and 4n micro-batches (DualPipe on even counts only) and checks each
// program; more, when not nil, checks each further.
func checkAllMethods(t *testing.T, lower func(*Schedule) (*Program, error), ns []int, more func(m Method, n, c int, s *Schedule, p *Program)) {
	t.Helper()
	for _, m := range []Method{Method1F1B, MethodZB1P, MethodDualPipe, MethodDualPipeV} {
		for _, n := range ns {
			for _, c := range []int{2 * n, 2*n + 2, 4 * n} {
				if m == MethodDualPipe && n%2 == 1 {
					continue
				}
				s, err := Generate(m, n, c)
				if err != nil {
					t.Fatal(err)
				}
				p, err := lower(s)
				if err != nil {
					t.Fatalf("%s N=%d C=%d: %v", m, n, c, err)
				}
				if err := p.Check(); err != nil {
					t.Errorf("%s N=%d C=%d: %v", m, n, c, err)
				}
				if more != nil {
					more(m, n, c, s, p)
				}
			}
		}
	}
}

func TestLowerCheckAllMethods(t *testing.T) {
	checkAllMethods(t, Lower, []int{1, 2, 4, 8, 16}, func(m Method, n, c int, s *Schedule, p *Program) {
		// Messages: every stage boundary crossed between ranks carries one
		// activation and one gradient per micro-batch.
		sends := 0
		for _, prog := range p.Ranks {
			for _, in := range prog {
				if in.Kind == Send {
					sends++
				}
			}
		}
		cross := s.Pipes * (s.Stages - 1)
		if m == MethodDualPipeV {
			cross-- // the turn of the V stays on the last rank
		}
		if want := 2 * cross * s.Micro; sends != want {
			t.Errorf("%s N=%d C=%d: %d sends, want %d", m, n, c, sends, want)
		}
	})
}

// DualPipeV with 2 ranks: the turn of the V (stage 1 → stage 2 and back)
// stays on rank 1 and needs no message.
func TestLowerGolden(t *testing.T) {
	s, _ := DualPipeV(2, 4)
	p, err := Lower(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"r0: F0.0 send(r1,act0.0) F0.1 send(r1,act0.1) F0.2 send(r1,act0.2) recv(r1,act1.0) F1.0 b1.0 send(r1,grad1.0) W1.0 recv(r1,act1.1) F1.1 F0.3&B1.1 send(r1,act0.3) send(r1,grad1.1) recv(r1,act1.2) recv(r1,grad0.0) F1.2&B0.0 B1.2 send(r1,grad1.2) recv(r1,act1.3) recv(r1,grad0.1) F1.3&B0.1 B1.3 send(r1,grad1.3) recv(r1,grad0.2) b0.2 W0.2 recv(r1,grad0.3) b0.3 W0.3",
		"r1: recv(r0,act0.0) F0.0 F1.0 send(r0,act1.0) recv(r0,act0.1) F0.1 F1.1 send(r0,act1.1) recv(r0,act0.2) F0.2 recv(r0,grad1.0) B1.0 F1.2&B0.0 send(r0,act1.2) send(r0,grad0.0) recv(r0,act0.3) recv(r0,grad1.1) F0.3&B1.1 F1.3&B0.1 send(r0,act1.3) send(r0,grad0.1) recv(r0,grad1.2) B1.2 B0.2 send(r0,grad0.2) recv(r0,grad1.3) b1.3 b0.3 send(r0,grad0.3) W1.3 W0.3",
	}
	for r, l := range p.Lines() {
		if l != want[r] {
			t.Errorf("rank %d:\n got  %s\n want %s", r, l, want[r])
		}
	}
}

func TestCheckDetectsBadPrograms(t *testing.T) {
	s, _ := OneFOneB(2, 2)
	p, err := Lower(s)
	if err != nil {
		t.Fatal(err)
	}
	clone := func() *Program {
		q := &Program{Schedule: p.Schedule, Ranks: make([][]Instr, len(p.Ranks))}
		for r := range p.Ranks {
			q.Ranks[r] = append([]Instr(nil), p.Ranks[r]...)
		}
		return q
	}
	remove := func(q *Program, r, i int) {
		q.Ranks[r] = append(q.Ranks[r][:i], q.Ranks[r][i+1:]...)
	}
	find := func(q *Program, r int, k InstrKind) int {
		for i, in := range q.Ranks[r] {
			if in.Kind == k {
				return i
			}
		}
		t.Fatalf("rank %d has no instruction of kind %d", r, k)
		return -1
	}

	t.Run("missing recv", func(t *testing.T) {
		q := clone()
		remove(q, 1, find(q, 1, Recv))
		if err := q.Check(); !errors.Is(err, ErrUnmatched) {
			t.Fatalf("err = %v, want ErrUnmatched", err)
		}
	})
	t.Run("duplicate send", func(t *testing.T) {
		q := clone()
		i := find(q, 0, Send)
		q.Ranks[0] = append(q.Ranks[0][:i+1], q.Ranks[0][i:]...)
		if err := q.Check(); !errors.Is(err, ErrUnmatched) {
			t.Fatalf("err = %v, want ErrUnmatched", err)
		}
	})
	t.Run("send before compute", func(t *testing.T) {
		q := clone()
		i := find(q, 0, Send)
		q.Ranks[0][i-1], q.Ranks[0][i] = q.Ranks[0][i], q.Ranks[0][i-1]
		if err := q.Check(); !errors.Is(err, ErrSchedule) {
			t.Fatalf("err = %v, want ErrSchedule", err)
		}
	})
	t.Run("compute before recv", func(t *testing.T) {
		q := clone()
		i := find(q, 1, Recv)
		q.Ranks[1][i], q.Ranks[1][i+1] = q.Ranks[1][i+1], q.Ranks[1][i]
		if err := q.Check(); !errors.Is(err, ErrSchedule) {
			t.Fatalf("err = %v, want ErrSchedule", err)
		}
	})
	t.Run("cross wait", func(t *testing.T) {
		q, err := Lower(crossDeadlock())
		if err != nil {
			t.Fatal(err)
		}
		err = q.Check()
		if !errors.Is(err, ErrDeadlock) {
			t.Fatalf("err = %v, want ErrDeadlock", err)
		}
		t.Log(err)
	})
	t.Run("mismatched schedule", func(t *testing.T) {
		q := &Program{Schedule: s}
		if err := q.Check(); !errors.Is(err, ErrSchedule) {
			t.Fatalf("err = %v", err)
		}
	})
}

func ExampleLower() {
	s, _ := OneFOneB(2, 2)
	p, _ := Lower(s)
	if err := p.Check(); err != nil {
		fmt.Println(err)
	}
	for _, l := range p.Lines() {
		fmt.Println(l)
	}
	// Output:
	// r0: F0.0 send(r1,act0.0) F0.1 send(r1,act0.1) recv(r1,grad0.0) B0.0 recv(r1,grad0.1) B0.1
	// r1: recv(r0,act0.0) F0.0 B0.0 send(r0,grad0.0) recv(r0,act0.1) F0.1 B0.1 send(r0,grad0.1)
}

// The middle rank of DualPipe(4, 8) in upstream's posting order: it sends
// F0 at once in step 2, prefetches the next F0 input before F1, holds its
// last F1 output back, and in step 4 sends it between F0 and B1.
func TestLowerReferenceGolden(t *testing.T) {
	s, _ := DualPipe(4, 8)
	p, err := LowerReference(s)
	if err != nil {
		t.Fatal(err)
	}
	want := "r1: recv(r0,act0.0) commit F0.0 send(r2,act0.0) recv(r0,act0.1) recv(r2,act1.0) commit F1.0 send(r0,act1.0) commit F0.1 send(r2,act0.1) recv(r0,act0.2) recv(r2,act1.1) commit F1.1 F0.2 send(r0,act1.1) recv(r0,grad1.0) commit B1.0 send(r2,act0.2) send(r2,grad1.0) recv(r2,act1.2) recv(r2,grad0.0) commit F1.2&B0.0 send(r0,act1.2) send(r0,grad0.0) recv(r0,act0.3) recv(r0,grad1.1) commit F0.3&B1.1 send(r2,act0.3) send(r2,grad1.1) recv(r2,act1.3) recv(r2,grad0.1) commit F1.3&B0.1 send(r0,act1.3) send(r0,grad0.1) recv(r0,grad1.2) commit B1.2 send(r2,grad1.2) recv(r2,grad0.2) commit B0.2 send(r0,grad0.2) recv(r0,grad1.3) commit b1.3 send(r2,grad1.3) recv(r2,grad0.3) commit b0.3 send(r0,grad0.3) commit W1.3 W0.3"
	if got := p.Lines()[1]; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Rank 0, step 3: the F1 receive is posted before W.
	if !strings.Contains(p.Lines()[0], "b1.0 send(r1,grad1.0) recv(r1,act1.1) commit W1.0 F1.1") {
		t.Errorf("rank 0 does not post the F1 receive before W: %s", p.Lines()[0])
	}
}

func TestLowerReferenceCheckAllMethods(t *testing.T) {
	checkAllMethods(t, LowerReference, []int{1, 2, 3, 4, 8, 16}, nil)
}

// Under batched commits a rank whose commit waits on a peer that waits on
// a later commit of the first rank deadlocks: the checker must see it.
func TestCheckBatchedDeadlock(t *testing.T) {
	s, _ := OneFOneB(2, 2)
	p, err := LowerReference(s)
	if err != nil {
		t.Fatal(err)
	}
	// Rank 0 commits "send act0.1, recv grad0.0" before it sends act0.0,
	// which rank 1 needs before it can produce grad0.0.
	q := &Program{Schedule: s, Batched: true}
	q.Ranks = [][]Instr{
		{{Kind: Compute, Op: s.Ops[0][0]}, {Kind: Compute, Op: s.Ops[0][1]},
			{Kind: Send, Peer: 1, Tag: Tag{0, Activation, 1}}, {Kind: Recv, Peer: 1, Tag: Tag{0, Gradient, 0}}, {Kind: Commit},
			{Kind: Send, Peer: 1, Tag: Tag{0, Activation, 0}}, {Kind: Commit},
			{Kind: Compute, Op: s.Ops[0][2]}, {Kind: Recv, Peer: 1, Tag: Tag{0, Gradient, 1}}, {Kind: Commit},
			{Kind: Compute, Op: s.Ops[0][3]}},
		p.Ranks[1],
	}
	if err := q.Check(); !errors.Is(err, ErrDeadlock) {
		t.Fatalf("err = %v, want ErrDeadlock", err)
	} else {
		t.Log(err)
	}
	// A receive left uncommitted is an error of its own.
	q.Ranks[0] = append([]Instr(nil), q.Ranks[0][:len(q.Ranks[0])-2]...)
	q.Ranks[0] = append(q.Ranks[0], Instr{Kind: Compute, Op: s.Ops[0][3]})
	q.Ranks[0][len(q.Ranks[0])-1], q.Ranks[0][len(q.Ranks[0])-2] = q.Ranks[0][len(q.Ranks[0])-2], q.Ranks[0][len(q.Ranks[0])-1]
	if err := q.Check(); !errors.Is(err, ErrSchedule) {
		t.Fatalf("err = %v, want ErrSchedule", err)
	}
}
