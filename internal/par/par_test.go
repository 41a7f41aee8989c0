package par

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestForAll checks that every item runs exactly once, for any worker
// count, and that each participant's done runs once.
func TestForAll(t *testing.T) {
	for _, workers := range []int{0, 1, 2, 8, 100} {
		for _, n := range []int{0, 1, 7, 1000} {
			hits := make([]int32, n)
			var made, done atomic.Int32
			err := For(context.Background(), n, workers, func() (func(int), func()) {
				made.Add(1)
				return func(i int) { atomic.AddInt32(&hits[i], 1) }, func() { done.Add(1) }
			})
			if err != nil {
				t.Fatalf("workers %d n %d: %v", workers, n, err)
			}
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("workers %d n %d: item %d ran %d times", workers, n, i, h)
				}
			}
			if made.Load() != done.Load() || (n > 0 && made.Load() < 1) || int(made.Load()) > max(min(workers, n), 1) {
				t.Fatalf("workers %d n %d: %d participants, %d done", workers, n, made.Load(), done.Load())
			}
		}
	}
}

// TestForCancel checks that a cancelled context stops the loop and is
// returned.
func TestForCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int32
	err := For(ctx, 1000, 4, func() (func(int), func()) {
		return func(i int) {
			if ran.Add(1) == 10 {
				cancel()
			}
		}, func() {}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if r := ran.Load(); r >= 1000 {
		t.Fatalf("ran all %d items after cancel", r)
	}
}

// TestForConcurrentNested runs calls from many goroutines at once, each
// with nested calls inside its items: busy helpers make calls go on with
// fewer participants, never block, and results stay exact.
func TestForConcurrentNested(t *testing.T) {
	w := runtime.GOMAXPROCS(0) + 2
	var wg sync.WaitGroup
	sums := make([]int64, 8)
	for g := range sums {
		wg.Go(func() {
			_ = For(context.Background(), 16, w, func() (func(int), func()) {
				return func(i int) {
					var inner atomic.Int64
					_ = For(context.Background(), 10, w, func() (func(int), func()) {
						return func(j int) { inner.Add(int64(j)) }, func() {}
					})
					atomic.AddInt64(&sums[g], inner.Load()+int64(i))
				}, func() {}
			})
		})
	}
	wg.Wait()
	for g, s := range sums {
		if want := int64(16*45 + 120); s != want {
			t.Fatalf("goroutine %d: sum %d, want %d", g, s, want)
		}
	}
}

// TestRunAllocs checks that a steady-state Run allocates nothing.
func TestRunAllocs(t *testing.T) {
	r := &countRunner{n: 64}
	Run(r, &r.wg, 1)
	if n := testing.AllocsPerRun(50, func() {
		r.next.Store(0)
		Run(r, &r.wg, 1)
	}); n > 0 {
		t.Fatalf("Run allocates %.1f times per call", n)
	}
}

type countRunner struct {
	n    int64
	next atomic.Int64
	wg   sync.WaitGroup
}

func (r *countRunner) Loop() {
	for r.next.Add(1) <= r.n {
	}
}

func (r *countRunner) Done() { r.wg.Done() }
