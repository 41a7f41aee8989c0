package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// mlp is upstream's example stage in float64 with a manual backward:
// Linear(h, f, no bias) → GELU (tanh form) → Linear(f, h, no bias). Payloads
// are row-major [rows, h].
type mlp struct {
	h, f   int
	w1, w2 []float64 // [f, h], [h, f]
	g1, g2 []float64 // accumulated weight gradients
	saved  map[int]*mlpSaved
}

type mlpSaved struct {
	rows              int
	x, a, g, dy, da   []float64
	forward, backward bool
}

func newMLP(h, f int, seed uint64) *mlp {
	r := testutil.RNG(seed)
	m := &mlp{h: h, f: f, w1: make([]float64, f*h), w2: make([]float64, h*f),
		g1: make([]float64, f*h), g2: make([]float64, h*f), saved: map[int]*mlpSaved{}}
	for i := range m.w1 {
		m.w1[i] = r.NormFloat64() / math.Sqrt(float64(h))
	}
	for i := range m.w2 {
		m.w2[i] = r.NormFloat64() / math.Sqrt(float64(f))
	}
	return m
}

// clone returns a copy with the same weights and zero gradients.
func (m *mlp) clone() *mlp {
	c := &mlp{h: m.h, f: m.f, w1: append([]float64(nil), m.w1...), w2: append([]float64(nil), m.w2...),
		g1: make([]float64, len(m.g1)), g2: make([]float64, len(m.g2)), saved: map[int]*mlpSaved{}}
	return c
}

func (m *mlp) Forward(_ context.Context, micro int, x []float64) ([]float64, error) {
	if len(x)%m.h != 0 {
		return nil, fmt.Errorf("input of %d values is not [rows, %d]", len(x), m.h)
	}
	if _, dup := m.saved[micro]; dup {
		return nil, fmt.Errorf("micro-batch %d forwarded twice", micro)
	}
	rows := len(x) / m.h
	s := &mlpSaved{rows: rows, x: x, a: make([]float64, rows*m.f), g: make([]float64, rows*m.f), forward: true}
	y := make([]float64, rows*m.h)
	testutil.MLPForward(m.h, m.f, rows, x, m.w1, m.w2, s.a, s.g, y)
	m.saved[micro] = s
	return y, nil
}

func (m *mlp) BackwardInput(_ context.Context, micro int, dy []float64) ([]float64, error) {
	s, ok := m.saved[micro]
	if !ok || s.backward {
		return nil, fmt.Errorf("micro-batch %d: backward without forward", micro)
	}
	s.backward, s.dy = true, dy
	s.da = make([]float64, s.rows*m.f)
	dx := make([]float64, s.rows*m.h)
	testutil.MLPBackwardInput(m.h, m.f, s.rows, dy, m.w1, m.w2, s.a, s.da, dx)
	return dx, nil
}

func (m *mlp) BackwardWeight(_ context.Context, micro int) error {
	s, ok := m.saved[micro]
	if !ok || !s.backward {
		return fmt.Errorf("micro-batch %d: weight gradient before input gradient", micro)
	}
	testutil.MLPBackwardWeight(m.h, m.f, s.rows, s.x, s.g, s.dy, s.da, m.g1, m.g2)
	delete(m.saved, micro)
	return nil
}

// overlapMLP adds the overlapped forward-backward hook; like upstream's
// example it runs the two halves one after the other, and counts its calls.
type overlapMLP struct {
	*mlp
	calls *atomic.Int64
}

func (o overlapMLP) OverlappedForwardBackward(ctx context.Context, fwd Stage[[]float64], fm int, in []float64, bwd Stage[[]float64], bm int, gradOut []float64) ([]float64, []float64, error) {
	o.calls.Add(1)
	out, err := fwd.Forward(ctx, fm, in)
	if err != nil {
		return nil, nil, err
	}
	gin, err := bwd.BackwardInput(ctx, bm, gradOut)
	if err != nil {
		return nil, nil, err
	}
	return out, gin, bwd.BackwardWeight(ctx, bm)
}

func mseLoss(y, label []float64) (float64, []float64) {
	var l float64
	g := make([]float64, len(y))
	n := float64(len(y))
	for i := range y {
		d := y[i] - label[i]
		l += d * d
		g[i] = 2 * d / n
	}
	return l / n, g
}

type mlpCase struct {
	method        Method
	ranks, chunks int
	hook          bool
	reference     bool // LowerReference's batched program
}

// generateLowered generates method's schedule on ranks ranks with chunks
// micro-batches and lowers it, with LowerReference where reference is set and
// Lower otherwise; it fails t on any error.
func generateLowered(t *testing.T, method Method, ranks, chunks int, reference bool) (*Schedule, *Program) {
	t.Helper()
	s, err := Generate(method, ranks, chunks)
	if err != nil {
		t.Fatal(err)
	}
	lower := Lower
	if reference {
		lower = LowerReference
	}
	prog, err := lower(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, prog
}

func runMLPCase(t *testing.T, tc mlpCase) {
	const h, f, rows = 4, 16, 3
	s, prog := generateLowered(t, tc.method, tc.ranks, tc.chunks, tc.reference)
	if err := prog.Check(); err != nil {
		t.Fatal(err)
	}
	r := testutil.RNG(233)
	total := s.Pipes * s.Micro
	inputs, labels := make([][]float64, total), make([][]float64, total)
	for i := range inputs {
		inputs[i] = testutil.F64(testutil.Normal(r, rows*h, 0, 1))
		labels[i] = testutil.F64(testutil.Normal(r, rows*h, 0, 1))
	}
	model := make([]*mlp, s.Stages)
	for i := range model {
		model[i] = newMLP(h, f, uint64(1000+i))
	}

	// Sequential single-rank reference: each micro-batch through every
	// stage, then back, weight gradients at once.
	ref := make([]*mlp, s.Stages)
	for i := range ref {
		ref[i] = model[i].clone()
	}
	var err error
	refLoss := make([]float64, total)
	ctx := context.Background()
	for mb := 0; mb < total; mb++ {
		x := inputs[mb]
		for _, st := range ref {
			if x, err = st.Forward(ctx, mb, x); err != nil {
				t.Fatal(err)
			}
		}
		var g []float64
		refLoss[mb], g = mseLoss(x, labels[mb])
		for i := len(ref) - 1; i >= 0; i-- {
			if g, err = ref[i].BackwardInput(ctx, mb, g); err != nil {
				t.Fatal(err)
			}
			if err := ref[i].BackwardWeight(ctx, mb); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Pipelined run: every rank holds copies of its stages; DualPipe's two
	// copies of a model stage get the same weights.
	var calls atomic.Int64
	copies := make([][]*mlp, s.Stages)
	stages := make([][]Stage[[]float64], s.Ranks)
	for rk, ps := range s.Place {
		for _, p := range ps {
			c := model[p.Stage].clone()
			copies[p.Stage] = append(copies[p.Stage], c)
			if tc.hook {
				stages[rk] = append(stages[rk], overlapMLP{c, &calls})
			} else {
				stages[rk] = append(stages[rk], c)
			}
		}
	}
	ex := &Executor[[]float64]{
		Program: prog,
		Input: func(pipe, micro int) ([]float64, error) {
			return inputs[pipe*s.Micro+micro], nil
		},
		Criterion: func(pipe, micro int, out []float64) (float64, []float64, error) {
			l, g := mseLoss(out, labels[pipe*s.Micro+micro])
			return l, g, nil
		},
	}
	losses, err := ex.RunLocal(ctx, stages)
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != total {
		t.Fatalf("%d losses, want %d", len(losses), total)
	}
	for _, l := range losses {
		if want := refLoss[l.Pipe*s.Micro+l.Micro]; l.Value != want {
			t.Errorf("pipe %d micro-batch %d: loss %v, sequential %v (must be bit-equal)", l.Pipe, l.Micro, l.Value, want)
		}
	}
	for st := range model {
		g1 := make([]float64, h*f)
		g2 := make([]float64, h*f)
		for _, c := range copies[st] {
			for i := range g1 {
				g1[i] += c.g1[i]
				g2[i] += c.g2[i]
			}
			if len(c.saved) != 0 {
				t.Errorf("stage %d copy holds %d micro-batches after the step", st, len(c.saved))
			}
		}
		if d := testutil.CalcDiff(g1, ref[st].g1); !(d < 1e-13) {
			t.Errorf("stage %d W1 grad calc_diff %g ≥ 1e-13", st, d)
		}
		if d := testutil.CalcDiff(g2, ref[st].g2); !(d < 1e-13) {
			t.Errorf("stage %d W2 grad calc_diff %g ≥ 1e-13", st, d)
		}
	}
	pairs := 0
	for _, ops := range s.Ops {
		for _, o := range ops {
			if o.Overlapped() {
				pairs++
			}
		}
	}
	if tc.hook && calls.Load() != int64(pairs) {
		t.Errorf("overlap hook called %d times, want %d", calls.Load(), pairs)
	}
}

// TestExecutorMatchesSequential ports upstream's examples/example_dualpipe{,v}.py
// check to a tiny float64 MLP: losses bit-equal to a single-rank run,
// gradients within calc_diff < 1e-13, for 2, 4 and 8 ranks.
func TestExecutorMatchesSequential(t *testing.T) {
	var cases []mlpCase
	for _, n := range []int{2, 4, 8} {
		cases = append(cases,
			mlpCase{Method1F1B, n, n + 2, false, false},
			mlpCase{MethodZB1P, n, n + 2, false, true},
			mlpCase{MethodDualPipe, n, 2 * n, false, false},
			mlpCase{MethodDualPipe, n, 2*n + 4, true, true},
			mlpCase{MethodDualPipeV, n, 2 * n, true, false},
			mlpCase{MethodDualPipeV, n, 2*n + 3, false, true},
		)
	}
	cases = append(cases, mlpCase{MethodDualPipeV, 1, 2, false, true}, mlpCase{Method1F1B, 1, 3, false, false})
	for _, tc := range cases {
		name := fmt.Sprintf("%s/N=%d/C=%d", tc.method, tc.ranks, tc.chunks)
		if tc.hook {
			name += "/hook"
		}
		if tc.reference {
			name += "/reference"
		}
		t.Run(name, func(t *testing.T) { runMLPCase(t, tc) })
	}
}

// failing wraps a stage and fails one call.
type failing struct {
	Stage[[]float64]
	micro int
}

var errBoom = errors.New("boom")

func (f failing) BackwardInput(ctx context.Context, micro int, g []float64) ([]float64, error) {
	if micro == f.micro {
		return nil, errBoom
	}
	return f.Stage.BackwardInput(ctx, micro, g)
}

func TestExecutorErrors(t *testing.T) {
	s, _ := DualPipe(4, 8)
	prog, _ := Lower(s)
	mk := func() [][]Stage[[]float64] {
		st := make([][]Stage[[]float64], s.Ranks)
		for r, ps := range s.Place {
			for _, p := range ps {
				st[r] = append(st[r], newMLP(2, 4, uint64(p.Stage)))
			}
		}
		return st
	}
	ex := &Executor[[]float64]{
		Program: prog,
		Input:   func(pipe, micro int) ([]float64, error) { return []float64{1, 2}, nil },
		Criterion: func(pipe, micro int, out []float64) (float64, []float64, error) {
			l, g := mseLoss(out, []float64{0, 0})
			return l, g, nil
		},
	}
	t.Run("stage error cancels all ranks", func(t *testing.T) {
		st := mk()
		st[2][0] = failing{st[2][0], 1}
		_, err := ex.RunLocal(context.Background(), st)
		if !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := ex.RunLocal(ctx, mk()); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong stage count", func(t *testing.T) {
		st := mk()
		st[1] = st[1][:1]
		if _, err := ex.RunLocal(context.Background(), st); !errors.Is(err, ErrParam) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("weight store out of order", func(t *testing.T) {
		// Swap two W ops of rank 1 (W1.3 W0.3): the FIFO store refuses.
		bad := &Program{Schedule: s, Ranks: make([][]Instr, s.Ranks)}
		for r := range prog.Ranks {
			bad.Ranks[r] = append([]Instr(nil), prog.Ranks[r]...)
		}
		n := len(bad.Ranks[1])
		bad.Ranks[1][n-1], bad.Ranks[1][n-2] = bad.Ranks[1][n-2], bad.Ranks[1][n-1]
		bx := *ex
		bx.Program = bad
		if _, err := bx.RunLocal(context.Background(), mk()); !errors.Is(err, ErrWeightStore) {
			t.Fatalf("err = %v, want ErrWeightStore", err)
		}
	})
	t.Run("weight store not empty", func(t *testing.T) {
		bad := &Program{Schedule: s, Ranks: make([][]Instr, s.Ranks)}
		for r := range prog.Ranks {
			bad.Ranks[r] = append([]Instr(nil), prog.Ranks[r]...)
		}
		bad.Ranks[1] = bad.Ranks[1][:len(bad.Ranks[1])-1]
		bx := *ex
		bx.Program = bad
		if _, err := bx.RunLocal(context.Background(), mk()); !errors.Is(err, ErrWeightStore) {
			t.Fatalf("err = %v, want ErrWeightStore", err)
		}
	})
}

func TestChanNetworkDuplicateSend(t *testing.T) {
	n := NewChanNetwork[int](2)
	ctx := context.Background()
	tag := Tag{0, Activation, 1}
	if err := n.Endpoint(0).Send(ctx, 1, tag, 7); err != nil {
		t.Fatal(err)
	}
	if err := n.Endpoint(0).Send(ctx, 1, tag, 8); !errors.Is(err, ErrUnmatched) {
		t.Fatalf("second send err = %v", err)
	}
	if err := n.Endpoint(0).Send(ctx, 5, tag, 8); !errors.Is(err, ErrParam) {
		t.Fatalf("bad rank err = %v", err)
	}
	// Matched by tag, not order: a different tag sent later is received first.
	other := Tag{0, Gradient, 0}
	if err := n.Endpoint(0).Send(ctx, 1, other, 9); err != nil {
		t.Fatal(err)
	}
	if v, err := n.Endpoint(1).Recv(ctx, 0, other); err != nil || v != 9 {
		t.Fatalf("recv = %v, %v", v, err)
	}
	if v, err := n.Endpoint(1).Recv(ctx, 0, tag); err != nil || v != 7 {
		t.Fatalf("recv = %v, %v", v, err)
	}
	if n.Pending() != 0 {
		t.Fatalf("pending %d", n.Pending())
	}
}

// jitter delays every send and receive by a random few microseconds, so
// messages arrive in orders unrelated to the order they were posted in.
type jitter struct {
	Transport[[]float64]
	seed uint64
	n    atomic.Uint64
}

func (j *jitter) pause() {
	x := j.n.Add(1)*0x9E3779B97F4A7C15 ^ j.seed
	time.Sleep(time.Duration(x%50) * time.Microsecond)
}

func (j *jitter) Send(ctx context.Context, to int, tag Tag, m []float64) error {
	j.pause()
	return j.Transport.Send(ctx, to, tag, m)
}

func (j *jitter) Recv(ctx context.Context, from int, tag Tag) ([]float64, error) {
	j.pause()
	return j.Transport.Recv(ctx, from, tag)
}

// TestRunRankJitter drives RunRank directly, one goroutine per rank, over
// a transport with random delays: the result must not depend on timing.
func TestRunRankJitter(t *testing.T) {
	s, _ := DualPipe(4, 12)
	prog, _ := Lower(s)
	in := func(pipe, micro int) ([]float64, error) {
		return []float64{float64(pipe), float64(micro), 1, -1}, nil
	}
	crit := func(pipe, micro int, out []float64) (float64, []float64, error) {
		l, g := mseLoss(out, []float64{0, 0, 0, 0})
		return l, g, nil
	}
	ex := &Executor[[]float64]{Program: prog, Input: in, Criterion: crit}
	want, err := ex.RunLocal(context.Background(), mlpStages(s))
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 3; seed++ {
		net := NewChanNetwork[[]float64](s.Ranks)
		stages := mlpStages(s)
		var wg sync.WaitGroup
		got := make([][]Loss, s.Ranks)
		errs := make([]error, s.Ranks)
		for r := 0; r < s.Ranks; r++ {
			wg.Add(1)
			go func(r int) {
				defer wg.Done()
				got[r], errs[r] = ex.RunRank(context.Background(), r, stages[r], &jitter{Transport: net.Endpoint(r), seed: seed * uint64(r+1)})
			}(r)
		}
		wg.Wait()
		var all []Loss
		for r := range got {
			if errs[r] != nil {
				t.Fatal(errs[r])
			}
			all = append(all, got[r]...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Pipe*1000+all[i].Micro < all[j].Pipe*1000+all[j].Micro })
		if len(all) != len(want) {
			t.Fatalf("%d losses, want %d", len(all), len(want))
		}
		for i := range all {
			if all[i] != want[i] {
				t.Errorf("seed %d: loss %v, want %v", seed, all[i], want[i])
			}
		}
		if net.Pending() != 0 {
			t.Errorf("%d messages left undelivered", net.Pending())
		}
	}
}

func mlpStages(s *Schedule) [][]Stage[[]float64] {
	st := make([][]Stage[[]float64], s.Ranks)
	for r, ps := range s.Place {
		for _, p := range ps {
			st[r] = append(st[r], newMLP(4, 8, uint64(p.Stage)))
		}
	}
	return st
}
