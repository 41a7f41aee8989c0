package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The op lists of upstream DualPipe for 4 ranks and 8 chunks, as derived in
// the research brief (Part B2) and drawn in the upstream README figure.
var goldenDualPipe4x8 = []string{
	"r0 F0.0 F0.1 F0.2 F1.0 b1.0 W1.0 F1.1 F0.3&B1.1 F1.2&B0.0 B1.2 F1.3&B0.1 B1.3 b0.2 W0.2 b0.3 W0.3",
	"r1 F0.0 F1.0 F0.1 F1.1 F0.2 B1.0 F1.2&B0.0 F0.3&B1.1 F1.3&B0.1 B1.2 B0.2 b1.3 b0.3 W1.3 W0.3",
	"r2 F1.0 F0.0 F1.1 F0.1 F1.2 B0.0 F0.2&B1.0 F1.3&B0.1 F0.3&B1.1 B0.2 B1.2 b0.3 b1.3 W0.3 W1.3",
	"r3 F1.0 F1.1 F1.2 F0.0 b0.0 W0.0 F0.1 F1.3&B0.1 F0.2&B1.0 B0.2 F0.3&B1.1 B0.3 b1.2 W1.2 b1.3 W1.3",
}

func noColon(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.Replace(l, ":", "", 1)
	}
	return out
}

func TestDualPipeGolden(t *testing.T) {
	s, err := DualPipe(4, 8)
	if err != nil {
		t.Fatal(err)
	}
	got := noColon(s.Lines())
	for r := range goldenDualPipe4x8 {
		if got[r] != goldenDualPipe4x8[r] {
			t.Errorf("rank %d:\n got  %s\n want %s", r, got[r], goldenDualPipe4x8[r])
		}
	}
}

func TestDualPipeVEqualsHalfOfDualPipe(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 8} {
		for _, c := range []int{2 * n, 2*n + 1, 3 * n, 4*n + 3} {
			t.Run(fmt.Sprintf("N=%d/C=%d", n, c), func(t *testing.T) {
				v, err := DualPipeV(n, c)
				if err != nil {
					t.Fatal(err)
				}
				d, err := DualPipe(2*n, 2*c)
				if err != nil {
					t.Fatal(err)
				}
				vl, dl := v.Lines(), d.Lines()
				for r := 0; r < n; r++ {
					if vl[r] != dl[r] {
						t.Errorf("rank %d:\n V  %s\n DP %s", r, vl[r], dl[r])
					}
				}
				if err := v.Validate(); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// stepCounts are the per-rank totals implied by the brief's step table (B2).
func TestDualPipeCounts(t *testing.T) {
	for _, n := range []int{2, 4, 6, 8, 16} {
		for _, c := range []int{2 * n, 2*n + 2, 4 * n} {
			s, err := DualPipe(n, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("N=%d C=%d: %v", n, c, err)
			}
			H := n / 2
			for r, ops := range s.Ops {
				h := min(r, n-1-r)
				mid := 0
				if h == H-1 {
					mid = 1
				}
				cnt := map[Kind]int{}
				pairs := 0
				var zb, ws []Action
				for _, o := range ops {
					for _, a := range o.Actions() {
						cnt[a.Kind]++
						switch a.Kind {
						case BackwardInput:
							zb = append(zb, Action{BackwardWeight, a.Phase, a.Micro})
						case BackwardWeight:
							ws = append(ws, a)
						}
					}
					if o.Overlapped() {
						pairs++
					}
				}
				if cnt[Forward] != c || cnt[Backward]+cnt[BackwardInput] != c {
					t.Errorf("N=%d C=%d r=%d: %d forwards, %d backwards; want %d each", n, c, r, cnt[Forward], cnt[Backward]+cnt[BackwardInput], c)
				}
				if cnt[BackwardInput] != n-h-1 || cnt[BackwardWeight] != cnt[BackwardInput] {
					t.Errorf("N=%d C=%d r=%d: %d b and %d W; want %d", n, c, r, cnt[BackwardInput], cnt[BackwardWeight], n-h-1)
				}
				if want := 2*(c/2-n+h+1) + (H - h - 1) - mid; pairs != want {
					t.Errorf("N=%d C=%d r=%d: %d overlapped pairs, want %d", n, c, r, pairs, want)
				}
				for i := range ws {
					if ws[i] != zb[i] {
						t.Errorf("N=%d C=%d r=%d: W #%d is %v, FIFO wants %v", n, c, r, i, ws[i], zb[i])
					}
				}
			}
		}
	}
}

func TestGeneratorsValidate(t *testing.T) {
	for _, m := range []Method{Method1F1B, MethodZB1P, MethodDualPipe, MethodDualPipeV} {
		for _, n := range []int{1, 2, 4, 8} {
			for _, c := range []int{2 * n, 2*n + 2, 5 * n} {
				if m == MethodDualPipe && n%2 == 1 {
					continue
				}
				s, err := Generate(m, n, c)
				if err != nil {
					t.Fatalf("%s N=%d C=%d: %v", m, n, c, err)
				}
				if err := s.Validate(); err != nil {
					t.Errorf("%s N=%d C=%d: %v", m, n, c, err)
				}
			}
		}
	}
}

func TestOneFOneBOrder(t *testing.T) {
	s, err := OneFOneB(4, 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"r0: F0.0 F0.1 F0.2 F0.3 B0.0 F0.4 B0.1 F0.5 B0.2 B0.3 B0.4 B0.5",
		"r1: F0.0 F0.1 F0.2 B0.0 F0.3 B0.1 F0.4 B0.2 F0.5 B0.3 B0.4 B0.5",
		"r2: F0.0 F0.1 B0.0 F0.2 B0.1 F0.3 B0.2 F0.4 B0.3 F0.5 B0.4 B0.5",
		"r3: F0.0 B0.0 F0.1 B0.1 F0.2 B0.2 F0.3 B0.3 F0.4 B0.4 F0.5 B0.5",
	}
	for r, l := range s.Lines() {
		if l != want[r] {
			t.Errorf("got  %s\nwant %s", l, want[r])
		}
	}
}

// TestZB1POrder pins torch's _get_1f1b_rank_ops(enable_zero_bubble=True,
// num_1f1b_microbatches=rank) for 4 ranks and 6 micro-batches.
func TestZB1POrder(t *testing.T) {
	s, err := ZB1P(4, 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"r0: F0.0 F0.1 F0.2 F0.3 b0.0 W0.0 F0.4 b0.1 W0.1 F0.5 b0.2 W0.2 b0.3 W0.3 b0.4 W0.4 b0.5 W0.5",
		"r1: F0.0 F0.1 F0.2 b0.0 F0.3 b0.1 W0.0 F0.4 b0.2 W0.1 F0.5 b0.3 W0.2 b0.4 W0.3 b0.5 W0.4 W0.5",
		"r2: F0.0 F0.1 b0.0 F0.2 b0.1 F0.3 b0.2 W0.0 F0.4 b0.3 W0.1 F0.5 b0.4 W0.2 b0.5 W0.3 W0.4 W0.5",
		"r3: F0.0 b0.0 F0.1 b0.1 F0.2 b0.2 F0.3 b0.3 W0.0 F0.4 b0.4 W0.1 F0.5 b0.5 W0.2 W0.3 W0.4 W0.5",
	}
	for r, l := range s.Lines() {
		if l != want[r] {
			t.Errorf("got  %s\nwant %s", l, want[r])
		}
	}
}

func TestGeneratorErrors(t *testing.T) {
	cases := []struct {
		m      Method
		n, c   int
		substr string
	}{
		{MethodDualPipe, 3, 8, "ranks=3 must be even"},
		{MethodDualPipe, 4, 9, "chunks=9 must be even"},
		{MethodDualPipe, 4, 6, "chunks=6 must be ≥ 2·ranks=8"},
		{MethodDualPipeV, 4, 7, "chunks=7 must be ≥ 2·ranks=8"},
		{Method1F1B, 4, 3, "chunks=3 must be ≥ ranks=4"},
		{MethodZB1P, 0, 3, "ranks=0 must be ≥ 1"},
		{MethodZB1P, 2, -1, "chunks=-1 must be ≥ 1"},
		{"gpipe", 2, 4, "method \"gpipe\""},
		// Each limit alone allowed 4096 ranks × 65536 chunks: tens of GB of ops.
		{Method1F1B, MaxRanks, MaxChunks, "ranks·chunks ≤ 65536"},
		{MethodDualPipe, 256, 512, "ranks·chunks ≤ 65536"},
		{MethodDualPipeV, 64, 4096, "ranks·chunks ≤ 65536"},
		{MethodZB1P, MaxRanks + 1, MaxRanks + 1, "ranks ≤ 4096"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/N=%d/C=%d", tc.m, tc.n, tc.c), func(t *testing.T) {
			_, err := Generate(tc.m, tc.n, tc.c)
			if !errors.Is(err, ErrParam) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err = %v, want ErrParam naming %q", err, tc.substr)
			}
		})
	}
}

func TestParseOpRoundTrip(t *testing.T) {
	for _, m := range []Method{Method1F1B, MethodZB1P, MethodDualPipe, MethodDualPipeV} {
		s, err := Generate(m, 4, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, ops := range s.Ops {
			for _, o := range ops {
				p, err := ParseOp(o.String())
				if err != nil || p != o {
					t.Fatalf("ParseOp(%q) = %v, %v", o.String(), p, err)
				}
			}
		}
	}
	for _, bad := range []string{"", "X0.1", "F0", "F0.-1", "F0.01", "B0.1&F1.2", "F0.1&", "F+1.2"} {
		if _, err := ParseOp(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseOp(%q) err = %v, want ErrSyntax", bad, err)
		}
	}
}
