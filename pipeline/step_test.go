package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// spy wraps a stage, counting backward calls and checking that Forward sees
// IsForwardOnly(ctx) == want.
type spy struct {
	*mlp
	want      bool
	backwards *atomic.Int64
	wrongCtx  *atomic.Int64
}

func (s spy) Forward(ctx context.Context, micro int, x []float64) ([]float64, error) {
	if IsForwardOnly(ctx) != s.want {
		s.wrongCtx.Add(1)
	}
	return s.mlp.Forward(ctx, micro, x)
}

func (s spy) BackwardInput(ctx context.Context, micro int, g []float64) ([]float64, error) {
	s.backwards.Add(1)
	return s.mlp.BackwardInput(ctx, micro, g)
}

func (s spy) BackwardWeight(ctx context.Context, micro int) error {
	s.backwards.Add(1)
	return s.mlp.BackwardWeight(ctx, micro)
}

// countKinds is a Transport that counts the messages of each kind.
type countKinds struct {
	Transport[[]float64]
	act, grad *atomic.Int64
}

func (c countKinds) Send(ctx context.Context, to int, tag Tag, msg []float64) error {
	if tag.Kind == Gradient {
		c.grad.Add(1)
	} else {
		c.act.Add(1)
	}
	return c.Transport.Send(ctx, to, tag, msg)
}

type stepCase struct {
	method        Method
	ranks, chunks int
	reference     bool
}

var stepCases = []stepCase{
	{Method1F1B, 4, 6, false},
	{MethodZB1P, 3, 5, true},
	{MethodDualPipe, 4, 8, false},
	{MethodDualPipe, 4, 10, true},
	{MethodDualPipeV, 2, 5, false},
	{MethodDualPipeV, 3, 6, true},
}

// stepFixture builds a case's program, its model's stages, the data, and
// the outputs and losses of running each micro-batch through the stages in
// turn (upstream's single-device reference).
type stepFixture struct {
	s              *Schedule
	prog           *Program
	inputs, labels [][]float64
	seqOut         [][]float64
	seqLoss        []float64
}

func newStepFixture(t *testing.T, tc stepCase) *stepFixture {
	t.Helper()
	s, prog := generateLowered(t, tc.method, tc.ranks, tc.chunks, tc.reference)
	fx := &stepFixture{s: s, prog: prog}
	r := testutil.RNG(7)
	total := s.Pipes * s.Micro
	for range total {
		fx.inputs = append(fx.inputs, testutil.F64(testutil.Normal(r, 2*4, 0, 1)))
		fx.labels = append(fx.labels, testutil.F64(testutil.Normal(r, 2*4, 0, 1)))
	}
	var err error
	ctx := context.Background()
	for mb := range total {
		x := fx.inputs[mb]
		for st := range s.Stages {
			if x, err = newMLP(4, 8, uint64(st)).Forward(ctx, mb, x); err != nil {
				t.Fatal(err)
			}
		}
		l, _ := mseLoss(x, fx.labels[mb])
		fx.seqOut = append(fx.seqOut, x)
		fx.seqLoss = append(fx.seqLoss, l)
	}
	return fx
}

func (fx *stepFixture) executor(criterion bool) *Executor[[]float64] {
	ex := &Executor[[]float64]{
		Program: fx.prog,
		Input:   func(pipe, micro int) ([]float64, error) { return fx.inputs[pipe*fx.s.Micro+micro], nil },
	}
	if criterion {
		ex.Criterion = func(pipe, micro int, out []float64) (float64, []float64, error) {
			l, g := mseLoss(out, fx.labels[pipe*fx.s.Micro+micro])
			return l, g, nil
		}
	}
	return ex
}

// run runs every rank with Step over a ChanNetwork, counting messages.
func (fx *stepFixture) run(t *testing.T, ex *Executor[[]float64], opts StepOptions, forwardOnly bool) (res StepResult[[]float64], backwards, wrongCtx, act, grad int64) {
	t.Helper()
	var bw, wc, na, ng atomic.Int64
	net := NewChanNetwork[[]float64](fx.s.Ranks)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, fx.s.Ranks)
	for r := range fx.s.Ranks {
		var stages []Stage[[]float64]
		for _, p := range fx.s.Place[r] {
			stages = append(stages, spy{newMLP(4, 8, uint64(p.Stage)), forwardOnly, &bw, &wc})
		}
		wg.Go(func() {
			got, err := ex.Step(context.Background(), r, stages, countKinds{net.Endpoint(r), &na, &ng}, opts)
			mu.Lock()
			defer mu.Unlock()
			errs[r] = err
			if got != nil {
				res.Losses = append(res.Losses, got.Losses...)
				res.Outputs = append(res.Outputs, got.Outputs...)
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	if n := net.Pending(); n != 0 {
		t.Fatalf("%d messages left unreceived", n)
	}
	slices.SortFunc(res.Losses, func(a, b Loss) int { return (a.Pipe-b.Pipe)*1<<20 + a.Micro - b.Micro })
	slices.SortFunc(res.Outputs, func(a, b Output[[]float64]) int { return (a.Pipe-b.Pipe)*1<<20 + a.Micro - b.Micro })
	return res, bw.Load(), wc.Load(), na.Load(), ng.Load()
}

func (fx *stepFixture) checkOutputs(t *testing.T, what string, outs []Output[[]float64]) {
	t.Helper()
	if len(outs) != len(fx.seqOut) {
		t.Fatalf("%s: %d outputs, want %d", what, len(outs), len(fx.seqOut))
	}
	for i, o := range outs {
		if o.Pipe*fx.s.Micro+o.Micro != i || !slices.Equal(o.Value, fx.seqOut[i]) {
			t.Fatalf("%s: output %d (pipe %d micro-batch %d) differs from the sequential forward", what, i, o.Pipe, o.Micro)
		}
	}
}

func (fx *stepFixture) checkLosses(t *testing.T, what string, ls []Loss) {
	t.Helper()
	if len(ls) != len(fx.seqLoss) {
		t.Fatalf("%s: %d losses, want %d", what, len(ls), len(fx.seqLoss))
	}
	for i, l := range ls {
		if l.Pipe*fx.s.Micro+l.Micro != i || l.Value != fx.seqLoss[i] {
			t.Fatalf("%s: loss %d (pipe %d micro-batch %d) = %v, sequential %v", what, i, l.Pipe, l.Micro, l.Value, fx.seqLoss[i])
		}
	}
}

// TestStepForwardOnly checks upstream's inference step (autograd off): the
// same losses and outputs as training, no backward, no gradient message, no
// weight-gradient store; and return_outputs in both modes.
func TestStepForwardOnly(t *testing.T) {
	for _, tc := range stepCases {
		t.Run(fmt.Sprintf("%s/N=%d/C=%d/ref=%v", tc.method, tc.ranks, tc.chunks, tc.reference), func(t *testing.T) {
			fx := newStepFixture(t, tc)
			train, bw, wc, act, grad := fx.run(t, fx.executor(true), StepOptions{ReturnOutputs: true}, false)
			fx.checkLosses(t, "training", train.Losses)
			fx.checkOutputs(t, "training", train.Outputs)
			if bw == 0 || grad == 0 || wc != 0 {
				t.Fatalf("training: %d backward calls, %d gradient messages, %d forwards saw forward-only", bw, grad, wc)
			}
			inf, bw, wc, act2, grad := fx.run(t, fx.executor(true), StepOptions{ForwardOnly: true, ReturnOutputs: true}, true)
			fx.checkLosses(t, "forward-only", inf.Losses)
			fx.checkOutputs(t, "forward-only", inf.Outputs)
			if bw != 0 || grad != 0 || wc != 0 {
				t.Fatalf("forward-only: %d backward calls, %d gradient messages, %d forwards did not see forward-only", bw, grad, wc)
			}
			if act2 != act {
				t.Fatalf("forward-only sent %d activations, training %d", act2, act)
			}
			// Without a criterion: outputs only; without ReturnOutputs: nothing kept.
			noCrit, _, _, _, _ := fx.run(t, fx.executor(false), StepOptions{ForwardOnly: true, ReturnOutputs: true}, true)
			if len(noCrit.Losses) != 0 {
				t.Fatalf("forward-only without criterion: %d losses", len(noCrit.Losses))
			}
			fx.checkOutputs(t, "forward-only without criterion", noCrit.Outputs)
			bare, _, _, _, _ := fx.run(t, fx.executor(true), StepOptions{}, false)
			if len(bare.Outputs) != 0 {
				t.Fatalf("ReturnOutputs unset: %d outputs", len(bare.Outputs))
			}
			fx.checkLosses(t, "training without outputs", bare.Losses)
		})
	}
}

// rankSpy records which transport ranks a message goes between.
type rankSpy struct {
	Transport[[]float64]
	self int
	mu   *sync.Mutex
	seen map[[2]int]int
}

func (r rankSpy) Send(ctx context.Context, to int, tag Tag, msg []float64) error {
	r.mu.Lock()
	r.seen[[2]int{r.self, to}]++
	r.mu.Unlock()
	return r.Transport.Send(ctx, to, tag, msg)
}

// TestStepRankMapping checks upstream's rank_mapping (process-group rank →
// pipeline rank): the same results as without it, and every message goes
// between the transport ranks that hold the neighbouring pipeline ranks.
func TestStepRankMapping(t *testing.T) {
	fx := newStepFixture(t, stepCase{MethodDualPipe, 4, 8, false})
	mapping := []int{2, 0, 3, 1} // transport rank r runs pipeline rank mapping[r]
	inv, err := CheckRankMapping(mapping, 4)
	if err != nil || !slices.Equal(inv, []int{1, 3, 0, 2}) {
		t.Fatalf("inverse %v, %v", inv, err)
	}
	// A rank count no schedule can have is refused, not allocated (a
	// negative one used to panic in make, 2^40 to exhaust memory).
	for _, n := range []int{0, -1, MaxRanks + 1, 1 << 40} {
		if inv, err := CheckRankMapping(nil, n); !errors.Is(err, ErrParam) || inv != nil {
			t.Errorf("CheckRankMapping(nil, %d) = %v, %v; want ErrParam", n, inv, err)
		}
	}
	if inv, err := CheckRankMapping(nil, MaxRanks); err != nil || len(inv) != MaxRanks || inv[MaxRanks-1] != MaxRanks-1 {
		t.Errorf("CheckRankMapping(nil, MaxRanks): len %d, %v", len(inv), err)
	}
	ex := fx.executor(true)
	net := NewChanNetwork[[]float64](4)
	var mu sync.Mutex
	seen := map[[2]int]int{}
	var wg sync.WaitGroup
	res := make([]*StepResult[[]float64], 4)
	errs := make([]error, 4)
	for r := range 4 {
		var stages []Stage[[]float64]
		for _, p := range fx.s.Place[mapping[r]] {
			stages = append(stages, newMLP(4, 8, uint64(p.Stage)))
		}
		wg.Go(func() {
			res[r], errs[r] = ex.Step(context.Background(), r, stages, rankSpy{net.Endpoint(r), r, &mu, seen}, StepOptions{RankMapping: mapping})
		})
	}
	wg.Wait()
	var losses []Loss
	for r := range 4 {
		if errs[r] != nil {
			t.Fatalf("transport rank %d: %v", r, errs[r])
		}
		// The losses come out where the last stages live: DualPipe's first
		// and last pipeline ranks.
		if q := mapping[r]; (q == 0 || q == 3) != (len(res[r].Losses) > 0) {
			t.Errorf("transport rank %d (pipeline rank %d) has %d losses", r, q, len(res[r].Losses))
		}
		losses = append(losses, res[r].Losses...)
	}
	slices.SortFunc(losses, func(a, b Loss) int { return (a.Pipe-b.Pipe)*1<<20 + a.Micro - b.Micro })
	fx.checkLosses(t, "mapped", losses)
	for k, n := range seen {
		p, q := mapping[k[0]], mapping[k[1]]
		if p-q != 1 && q-p != 1 {
			t.Errorf("%d messages from transport rank %d (pipeline %d) to %d (pipeline %d): not neighbours", n, k[0], p, k[1], q)
		}
	}
	if len(seen) != 6 {
		t.Errorf("messages flowed on %d directed links, want the 6 between neighbours: %v", len(seen), seen)
	}
	// StepLocal with the same mapping gives the same losses.
	stages := make([][]Stage[[]float64], 4)
	for q, ps := range fx.s.Place {
		for _, p := range ps {
			stages[q] = append(stages[q], newMLP(4, 8, uint64(p.Stage)))
		}
	}
	all, err := ex.StepLocal(context.Background(), stages, StepOptions{RankMapping: mapping, ReturnOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	fx.checkLosses(t, "StepLocal mapped", all.Losses)
	fx.checkOutputs(t, "StepLocal mapped", all.Outputs)
}

func TestStepBadOptions(t *testing.T) {
	fx := newStepFixture(t, stepCase{MethodDualPipeV, 2, 4, false})
	st := []Stage[[]float64]{newMLP(4, 8, 0), newMLP(4, 8, 3)}
	tr := NewChanNetwork[[]float64](2).Endpoint(0)
	for _, m := range [][]int{{0}, {0, 0}, {1, 2}, {-1, 0}, {0, 1, 2}} {
		if _, err := fx.executor(true).Step(context.Background(), 0, st, tr, StepOptions{RankMapping: m}); !errors.Is(err, ErrParam) {
			t.Errorf("mapping %v: got %v, want ErrParam", m, err)
		}
		if _, err := fx.executor(true).StepLocal(context.Background(), [][]Stage[[]float64]{st, st}, StepOptions{RankMapping: m}); !errors.Is(err, ErrParam) {
			t.Errorf("StepLocal mapping %v: got %v, want ErrParam", m, err)
		}
	}
	if _, err := fx.executor(true).Step(context.Background(), 5, st, tr, StepOptions{RankMapping: []int{1, 0}}); !errors.Is(err, ErrParam) {
		t.Errorf("rank 5 with a mapping: got %v, want ErrParam", err)
	}
	if _, err := fx.executor(false).Step(context.Background(), 0, st, tr, StepOptions{}); !errors.Is(err, ErrParam) {
		t.Errorf("training without criterion: got %v, want ErrParam", err)
	}
}

// TestScatterGather checks torch.tensor_split's part sizes and torch.cat's
// layout along an inner and the outer dimension.
func TestScatterGather(t *testing.T) {
	vals := make([]float32, 10*3)
	for i := range vals {
		vals[i] = float32(i)
	}
	batch, _ := tensor.FromSlice(vals, 10, 3)
	for _, tc := range []struct {
		n, dim int
		sizes  []int
	}{
		{4, 0, []int{3, 3, 2, 2}},
		{5, 0, []int{2, 2, 2, 2, 2}},
		{12, 0, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}},
		{2, 1, []int{2, 1}},
		{1, 1, []int{3}},
	} {
		parts, err := ScatterBatch(batch, tc.n, tc.dim)
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, p := range parts {
			sizes = append(sizes, p.Shape[tc.dim])
		}
		if !slices.Equal(sizes, tc.sizes) {
			t.Fatalf("n=%d dim=%d: sizes %v, want %v", tc.n, tc.dim, sizes, tc.sizes)
		}
		back, err := GatherBatch(parts, tc.dim)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.Shape, batch.Shape) || !slices.Equal(back.F32(), vals) {
			t.Fatalf("n=%d dim=%d: gather is not the batch: %v %v", tc.n, tc.dim, back.Shape, back.F32())
		}
	}
	cols, _ := ScatterBatch(batch, 2, 1)
	if got := cols[1].F32(); !slices.Equal(got, []float32{2, 5, 8, 11, 14, 17, 20, 23, 26, 29}) {
		t.Fatalf("column part: %v", got)
	}
	rows, _ := ScatterBatch(batch, 4, 0)
	if got := rows[3].F32(); !slices.Equal(got, vals[24:]) {
		t.Fatalf("last row part: %v", got)
	}
	// Bad input.
	strided := &tensor.Tensor{DType: tensor.F32, Shape: []int{2, 2}, Strides: []int{1, 2}, Data: make([]byte, 16)}
	for name, err := range map[string]error{
		"nil":            func() error { _, err := ScatterBatch(nil, 2, 0); return err }(),
		"zero parts":     func() error { _, err := ScatterBatch(batch, 0, 0); return err }(),
		"dim":            func() error { _, err := ScatterBatch(batch, 2, 2); return err }(),
		"strided":        func() error { _, err := ScatterBatch(strided, 2, 0); return err }(),
		"gather nothing": func() error { _, err := GatherBatch(nil, 0); return err }(),
		"gather shapes":  func() error { _, err := GatherBatch([]*tensor.Tensor{rows[0], cols[0]}, 0); return err }(),
		"gather dim":     func() error { _, err := GatherBatch(rows, -1); return err }(),
	} {
		if !errors.Is(err, ErrParam) {
			t.Errorf("%s: got %v, want ErrParam", name, err)
		}
	}
}
