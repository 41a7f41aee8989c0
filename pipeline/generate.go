package pipeline

import "fmt"

// Generate builds the schedule of method for ranks devices and chunks
// micro-batches; it dispatches to OneFOneB, ZB1P, DualPipe or DualPipeV.
func Generate(method Method, ranks, chunks int) (*Schedule, error) {
	switch method {
	case Method1F1B:
		return OneFOneB(ranks, chunks)
	case MethodZB1P:
		return ZB1P(ranks, chunks)
	case MethodDualPipe:
		return DualPipe(ranks, chunks)
	case MethodDualPipeV:
		return DualPipeV(ranks, chunks)
	}
	return nil, fmt.Errorf("%w: method %q is not one of 1f1b, zb1p, dualpipe, dualpipev", ErrParam, method)
}

// Size limits of the generators: at most MaxRanks ranks, MaxChunks
// micro-batches, and ranks·chunks ≤ MaxWork, which keeps a schedule (up to
// 4·ranks·chunks actions, for DualPipeV) and its simulation within a few
// hundred megabytes (DualPipeV at the limit: about 0.3 GB to simulate or
// draw).
const (
	MaxRanks  = 1 << 12 // most ranks a generator accepts
	MaxChunks = 1 << 16 // most micro-batches a generator accepts
	MaxWork   = 1 << 16 // largest ranks·chunks a generator accepts
)

func checkCommon(name string, ranks, chunks int) error {
	if ranks < 1 {
		return fmt.Errorf("%w: %s: ranks=%d must be ≥ 1", ErrParam, name, ranks)
	}
	if chunks < 1 {
		return fmt.Errorf("%w: %s: chunks=%d must be ≥ 1", ErrParam, name, chunks)
	}
	if ranks > MaxRanks || chunks > MaxChunks || ranks*chunks > MaxWork {
		return fmt.Errorf("%w: %s: ranks=%d chunks=%d too large (limits: ranks ≤ %d, chunks ≤ %d, ranks·chunks ≤ %d)", ErrParam, name, ranks, chunks, MaxRanks, MaxChunks, MaxWork)
	}
	return nil
}

func linearPlace(ranks int) [][]StageRef {
	p := make([][]StageRef, ranks)
	for r := range p {
		p[r] = []StageRef{{0, r}}
	}
	return p
}

// OneFOneB returns the non-interleaved 1F1B schedule (Megatron-LM's
// forward_backward_pipelining_without_interleaving; torch Schedule1F1B): rank
// r runs min(ranks−r−1, chunks) warm-up forwards, then alternates one forward
// and one full backward, then runs the remaining backwards. Rank r holds
// stage r. It requires chunks ≥ ranks ≥ 1 (error wrapping ErrParam).
func OneFOneB(ranks, chunks int) (*Schedule, error) {
	if err := checkCommon("1f1b", ranks, chunks); err != nil {
		return nil, err
	}
	if chunks < ranks {
		return nil, fmt.Errorf("%w: 1f1b: chunks=%d must be ≥ ranks=%d", ErrParam, chunks, ranks)
	}
	s := &Schedule{Method: Method1F1B, Ranks: ranks, Chunks: chunks, Pipes: 1, Stages: ranks, Micro: chunks, Place: linearPlace(ranks)}
	for r := 0; r < ranks; r++ {
		warm := min(ranks-r-1, chunks)
		var ops []Op
		f, b := 0, 0
		for ; f < warm; f++ {
			ops = append(ops, Op{Action: Action{Forward, 0, f}})
		}
		for ; f < chunks; f, b = f+1, b+1 {
			ops = append(ops, Op{Action: Action{Forward, 0, f}}, Op{Action: Action{Backward, 0, b}})
		}
		for ; b < chunks; b++ {
			ops = append(ops, Op{Action: Action{Backward, 0, b}})
		}
		s.Ops = append(s.Ops, ops)
	}
	return s, nil
}

// ZB1P returns the zero-bubble 1F1B schedule (ZB-H1) in the order torch's
// _get_1f1b_rank_ops produces with enable_zero_bubble and
// num_1f1b_microbatches = rank (torch/distributed/pipelining/schedules.py,
// ScheduleInterleavedZeroBubble with one stage per rank): rank r runs
// ranks−r−1 warm-up forwards, then pairs of F and b, each followed by a W
// once the rank has deferred its first r weight gradients, then the
// remaining b's each with a W, and finally the r deferred W's. It requires
// chunks ≥ ranks ≥ 1 (error wrapping ErrParam).
func ZB1P(ranks, chunks int) (*Schedule, error) {
	if err := checkCommon("zb1p", ranks, chunks); err != nil {
		return nil, err
	}
	if chunks < ranks {
		return nil, fmt.Errorf("%w: zb1p: chunks=%d must be ≥ ranks=%d", ErrParam, chunks, ranks)
	}
	s := &Schedule{Method: MethodZB1P, Ranks: ranks, Chunks: chunks, Pipes: 1, Stages: ranks, Micro: chunks, Place: linearPlace(ranks)}
	for r := 0; r < ranks; r++ {
		warm := min(ranks-r-1, chunks)
		var ops []Op
		f, b, w := 0, 0, 0
		for ; f < warm; f++ {
			ops = append(ops, Op{Action: Action{Forward, 0, f}})
		}
		for j := 0; f < chunks; j++ {
			ops = append(ops, Op{Action: Action{Forward, 0, f}}, Op{Action: Action{BackwardInput, 0, b}})
			f, b = f+1, b+1
			if j >= r {
				ops = append(ops, Op{Action: Action{BackwardWeight, 0, w}})
				w++
			}
		}
		for ; b < chunks; b++ {
			ops = append(ops, Op{Action: Action{BackwardInput, 0, b}})
			// In the cool-down op−warmup ≥ chunks−warm ≥ r always holds, so
			// each b is followed by a W.
			ops = append(ops, Op{Action: Action{BackwardWeight, 0, w}})
			w++
		}
		for ; w < chunks; w++ {
			ops = append(ops, Op{Action: Action{BackwardWeight, 0, w}})
		}
		s.Ops = append(s.Ops, ops)
	}
	return s, nil
}

// DualPipe returns DeepSeek's bidirectional DualPipe schedule in exactly the
// op order of upstream deepseek-ai/DualPipe dualpipe.py DualPipe.step (its
// eight steps, the non-overlapped first pair on the middle ranks and the
// zero-bubble switch in step 6). Rank r holds stage r of direction 0 (phase
// 0) and stage ranks−1−r of direction 1 (phase 1); each direction carries
// chunks/2 micro-batches. Phases in the op list are directions. It requires
// ranks even, chunks even and chunks ≥ 2·ranks (error wrapping ErrParam).
func DualPipe(ranks, chunks int) (*Schedule, error) {
	if err := checkCommon("dualpipe", ranks, chunks); err != nil {
		return nil, err
	}
	if ranks%2 != 0 {
		return nil, fmt.Errorf("%w: dualpipe: ranks=%d must be even", ErrParam, ranks)
	}
	if chunks%2 != 0 {
		return nil, fmt.Errorf("%w: dualpipe: chunks=%d must be even", ErrParam, chunks)
	}
	if chunks < 2*ranks {
		return nil, fmt.Errorf("%w: dualpipe: chunks=%d must be ≥ 2·ranks=%d", ErrParam, chunks, 2*ranks)
	}
	H := ranks / 2
	s := &Schedule{Method: MethodDualPipe, Ranks: ranks, Chunks: chunks, Pipes: 2, Stages: ranks, Micro: chunks / 2}
	for r := 0; r < ranks; r++ {
		h := min(r, ranks-1-r)
		s.Place = append(s.Place, []StageRef{{0, r}, {1, ranks - 1 - r}})
		s.Ops = append(s.Ops, dualOps(H, h, chunks/2, r >= H))
	}
	return s, nil
}

// DualPipeV returns the "cut-in-half" DualPipeV schedule in exactly the op
// order of upstream deepseek-ai/DualPipe dualpipev.py DualPipeV.step. There
// are 2·ranks stages on one pipe; rank r holds stage r (phase 0) and its
// mirror 2·ranks−1−r (phase 1), and all chunks micro-batches enter at rank
// 0. Its op lists equal the first ranks rows of DualPipe(2·ranks, 2·chunks).
// It requires chunks ≥ 2·ranks (error wrapping ErrParam).
func DualPipeV(ranks, chunks int) (*Schedule, error) {
	if err := checkCommon("dualpipev", ranks, chunks); err != nil {
		return nil, err
	}
	if chunks < 2*ranks {
		return nil, fmt.Errorf("%w: dualpipev: chunks=%d must be ≥ 2·ranks=%d", ErrParam, chunks, 2*ranks)
	}
	s := &Schedule{Method: MethodDualPipeV, Ranks: ranks, Chunks: chunks, Pipes: 1, Stages: 2 * ranks, Micro: chunks}
	for r := 0; r < ranks; r++ {
		s.Place = append(s.Place, []StageRef{{0, r}, {0, 2*ranks - 1 - r}})
		s.Ops = append(s.Ops, dualOps(ranks, r, chunks, false))
	}
	return s, nil
}

// dualOps emits the eight steps of upstream's step() for one rank: H half
// ranks, half rank h, halfC micro-batches per direction; flip is true on
// DualPipe's second half, where step phase p runs actual phase p^1.
func dualOps(H, h, halfC int, flip bool) []Op {
	x := 0
	if flip {
		x = 1
	}
	middle := h == H-1
	var fc, bc [2]int
	var queue []Action // FIFO weight-gradient store
	var ops []Op
	fwd := func(p int) Action {
		p ^= x
		a := Action{Forward, p, fc[p]}
		fc[p]++
		return a
	}
	bwd := func(p int, zb bool) Action {
		p ^= x
		a := Action{Backward, p, bc[p]}
		bc[p]++
		if zb {
			a.Kind = BackwardInput
			queue = append(queue, Action{BackwardWeight, p, a.Micro})
		}
		return a
	}
	weight := func() Action {
		a := queue[0]
		queue = queue[1:]
		return a
	}
	one := func(a Action) { ops = append(ops, Op{Action: a}) }
	pair := func(p0, p1 int) {
		f := fwd(p0)
		ops = append(ops, Op{Action: f, With: bwd(p1, false)})
	}
	// Step 1: nF0.
	for i := 0; i < 2*(H-h-1); i++ {
		one(fwd(0))
	}
	// Step 2: nF0F1.
	for i := 0; i < h+1; i++ {
		one(fwd(0))
		one(fwd(1))
	}
	// Step 3: nB1W1F1, zero bubble.
	for i := 0; i < H-h-1; i++ {
		one(bwd(1, true))
		one(weight())
		one(fwd(1))
	}
	// Step 4: the main loop of overlapped pairs; the middle ranks do not
	// overlap their first pair, to shrink the bubble.
	for i := 0; i < halfC-2*H+h+1; i++ {
		if i == 0 && middle {
			one(fwd(0))
			one(bwd(1, false))
		} else {
			pair(0, 1)
		}
		pair(1, 0)
	}
	// Step 5: nB1F1B0.
	for i := 0; i < H-h-1; i++ {
		one(bwd(1, false))
		pair(1, 0)
	}
	// Step 6: nB1B0; zero bubble from the middle iteration on.
	s6 := h + 1
	zb := false
	for i := 0; i < s6; i++ {
		if i == s6/2 && h%2 == 1 {
			zb = true
		}
		one(bwd(1, zb))
		if i == s6/2 && h%2 == 0 {
			zb = true
		}
		one(bwd(0, zb))
	}
	// Step 7: nWB0, zero bubble.
	for i := 0; i < H-h-1; i++ {
		one(weight())
		one(bwd(0, true))
	}
	// Step 8: nW.
	for i := 0; i < h+1; i++ {
		one(weight())
	}
	return ops
}
