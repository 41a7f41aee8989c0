// Package par is the module's one parallel-for: a process-wide set of
// parked helper goroutines that join parallel calls, so that a steady-state
// call starts no goroutine. gemm/cpu, mla's backends and the kernels'
// GemmPacked run their work through it.
//
// Helpers are started lazily, up to the largest number any call asked for
// (callers cap it at GOMAXPROCS−1), and park on an unbuffered channel for
// the life of the process; tests that check for leaked goroutines ignore
// helperLoop. A call never waits for a helper: if all are busy (concurrent
// or nested calls) it goes on with fewer participants, so results must not
// depend on how many take part (every caller hands out work items through
// an atomic counter and writes each output from one item).
package par

import (
	"context"
	"sync"
	"sync/atomic"
)

// Runner is a unit of parallel work for Run: every participant calls Loop,
// which claims items until none are left, and then Done.
type Runner interface {
	Loop()
	Done()
}

// helpers is the process-wide set of parked goroutines.
var helpers struct {
	mu sync.Mutex
	n  int
	ch chan Runner
}

func helperLoop(ch chan Runner) {
	for r := range ch {
		r.Loop()
		r.Done()
	}
}

// ensureHelpers starts helpers until n are running.
func ensureHelpers(n int) chan Runner {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	if helpers.ch == nil {
		helpers.ch = make(chan Runner)
	}
	for helpers.n < n {
		helpers.n++
		go helperLoop(helpers.ch)
	}
	return helpers.ch
}

// Run runs r.Loop on the calling goroutine and on up to extra idle helpers;
// wg is r's WaitGroup, which r.Done must release (wg.Done). It returns when
// every participant has finished. Run allocates nothing once the helpers
// exist.
func Run(r Runner, wg *sync.WaitGroup, extra int) {
	if extra > 0 {
		ch := ensureHelpers(extra)
		for i := 0; i < extra; i++ {
			wg.Add(1)
			select {
			case ch <- r:
			default:
				wg.Done() // every helper is busy (concurrent calls): do without
			}
		}
	}
	r.Loop()
	wg.Wait()
}

// For runs task(i) for every i in [0, n) on up to workers participants (the
// caller and workers−1 helpers; workers ≤ 1 runs everything on the caller).
// Each participant gets its own task closure from newWorker and calls the
// matching done when it has finished. For stops handing out items once ctx
// is done and then returns ctx.Err(); it returns nil when every item ran.
func For(ctx context.Context, n, workers int, newWorker func() (task func(int), done func())) error {
	if n <= 0 {
		return ctx.Err()
	}
	f := &forRunner{ctx: ctx, n: n, newWorker: newWorker}
	Run(f, &f.wg, min(workers, n)-1)
	return ctx.Err()
}

// forRunner is For's Runner.
type forRunner struct {
	ctx       context.Context
	n         int
	next      atomic.Int64
	newWorker func() (func(int), func())
	wg        sync.WaitGroup
}

func (f *forRunner) Loop() {
	task, done := f.newWorker()
	defer done()
	for f.ctx.Err() == nil {
		i := int(f.next.Add(1) - 1)
		if i >= f.n {
			return
		}
		task(i)
	}
}

func (f *forRunner) Done() { f.wg.Done() }
