package pipeline

import (
	"errors"
	"testing"
)

func FuzzParseOp(f *testing.F) {
	for _, s := range []string{"F0.0", "b1.12", "W0.3", "F0.3&B1.1", "B", "F0.1&B", "&", "F00.1", "F1.2&F1.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOp(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParseOp(%q) error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		if o.String() != s {
			t.Fatalf("ParseOp(%q) = %v, which prints as %q", s, o, o.String())
		}
	})
}

// FuzzGenerate: every accepted (method, ranks, chunks) gives a schedule that
// validates, lowers, passes the checker and simulates; rejected ones wrap
// ErrParam.
func FuzzGenerate(f *testing.F) {
	f.Add(uint8(0), 4, 8)
	f.Add(uint8(1), 3, 3)
	f.Add(uint8(2), 6, 12)
	f.Add(uint8(3), 5, 11)
	f.Add(uint8(2), 3, 12)
	f.Add(uint8(3), 0, -1)
	methods := []Method{Method1F1B, MethodZB1P, MethodDualPipe, MethodDualPipeV, "bogus"}
	f.Fuzz(func(t *testing.T, m uint8, ranks, chunks int) {
		if ranks > 24 || chunks > 96 {
			return // keep each case fast
		}
		method := methods[int(m)%len(methods)]
		s, err := Generate(method, ranks, chunks)
		if err != nil {
			if !errors.Is(err, ErrParam) {
				t.Fatalf("%s %d %d: error %v does not wrap ErrParam", method, ranks, chunks, err)
			}
			return
		}
		p, err := Lower(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Check(); err != nil {
			t.Fatal(err)
		}
		if p, err = LowerReference(s); err != nil {
			t.Fatal(err)
		}
		if err := p.Check(); err != nil {
			t.Fatal(err)
		}
		rep, err := Simulate(s, SimOptions{Costs: OpCosts{F: 1, B: 2, W: 1, FB: 3}})
		if err != nil {
			t.Fatal(err)
		}
		pp := ranks
		if method == MethodDualPipeV {
			pp = 2 * ranks
		}
		if method == MethodDualPipe || method == MethodDualPipeV {
			for r, idle := range rep.Idle {
				if idle != int64(pp/2-1)*2 {
					t.Fatalf("%s %d %d rank %d idle %d", method, ranks, chunks, r, idle)
				}
			}
		}
	})
}
