package pipeline

import (
	"context"
	"errors"
	"testing"
)

// TestTraceMeasured records a real local step, groups the calls into ops
// and turns them into a Report whose spans follow every rank's op order.
func TestTraceMeasured(t *testing.T) {
	s, _ := DualPipeV(2, 4)
	prog, _ := LowerReference(s)
	traces := make([]*Trace, s.Ranks)
	stages := mlpStages(s)
	for r := range stages {
		traces[r] = &Trace{}
		for ph := range stages[r] {
			stages[r][ph] = Wrap(traces[r], stages[r][ph])
		}
	}
	ex := &Executor[[]float64]{
		Program: prog,
		Input:   func(pipe, micro int) ([]float64, error) { return []float64{1, 2, 3, 4}, nil },
		Criterion: func(pipe, micro int, out []float64) (float64, []float64, error) {
			l, g := mseLoss(out, []float64{0, 0, 0, 0})
			return l, g, nil
		},
	}
	if _, err := ex.RunLocal(context.Background(), stages); err != nil {
		t.Fatal(err)
	}
	spans := make([][]Span, s.Ranks)
	calls := 0
	for r, tr := range traces {
		c := tr.Calls()
		calls += len(c)
		var err error
		if spans[r], err = OpSpans(s.Ops[r], c); err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		for i := 1; i < len(spans[r]); i++ {
			if spans[r][i].Start < spans[r][i-1].End {
				t.Fatalf("rank %d op %d starts before op %d ends", r, i, i-1)
			}
		}
	}
	// Every micro-batch is forwarded and backwarded on each of 4 stages.
	if want := 4 * 4 * 3; calls != want {
		t.Fatalf("%d calls, want %d (F, b, W per micro-batch and stage)", calls, want)
	}
	rep, err := Measured(s, spans, 1)
	if err != nil {
		t.Fatal(err)
	}
	first := min(rep.Spans[0][0].Start, rep.Spans[1][0].Start)
	if first != 0 || rep.Makespan <= 0 {
		t.Fatalf("first start %d, makespan %d", first, rep.Makespan)
	}
	for r := range rep.Busy {
		if rep.Busy[r]+rep.Idle[r] != rep.Makespan || rep.Busy[r] <= 0 {
			t.Fatalf("rank %d busy %d idle %d makespan %d", r, rep.Busy[r], rep.Idle[r], rep.Makespan)
		}
	}
	traces[0].Reset()
	if len(traces[0].Calls()) != 0 {
		t.Fatal("Reset kept calls")
	}
	// Calls that do not fit.
	if _, err := OpSpans(s.Ops[0], nil); !errors.Is(err, ErrParam) {
		t.Errorf("no calls: %v", err)
	}
	wrong := []Call{{Kind: BackwardWeight}}
	if _, err := OpSpans(s.Ops[0][:1], wrong); !errors.Is(err, ErrParam) {
		t.Errorf("wrong kind: %v", err)
	}
	extra := append(traces[1].Calls(), Call{Kind: Forward})
	if _, err := OpSpans(s.Ops[1], extra); !errors.Is(err, ErrParam) {
		t.Errorf("extra call: %v", err)
	}
	if _, err := Measured(s, spans[:1], 1); !errors.Is(err, ErrParam) {
		t.Errorf("one rank of spans: %v", err)
	}
	bad := [][]Span{append([]Span(nil), spans[0]...), spans[1]}
	bad[0][0].End = bad[0][0].Start - 1
	if _, err := Measured(s, bad, 1); !errors.Is(err, ErrParam) {
		t.Errorf("negative span: %v", err)
	}
	if _, err := Measured(s, spans, 0); !errors.Is(err, ErrParam) {
		t.Errorf("divisor 0: %v", err)
	}
}
