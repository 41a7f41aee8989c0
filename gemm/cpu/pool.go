package cpu

import (
	"sync"
)

// runner is a unit of parallel work: every participant calls loop, which
// claims items until none are left, and then done.
type runner interface {
	loop()
	done()
}

// helpers is a process-wide set of parked goroutines that join parallel
// calls, so a steady-state call starts no goroutine and allocates nothing.
// They park on an unbuffered channel and are started lazily, up to
// GOMAXPROCS−1 of them.
var helpers struct {
	mu sync.Mutex
	n  int
	ch chan runner
}

func helperLoop(ch chan runner) {
	for r := range ch {
		r.loop()
		r.done()
	}
}

// ensureHelpers starts helpers until n are running.
func ensureHelpers(n int) chan runner {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	if helpers.ch == nil {
		helpers.ch = make(chan runner)
	}
	for helpers.n < n {
		helpers.n++
		go helperLoop(helpers.ch)
	}
	return helpers.ch
}

// parallel runs r.loop on the calling goroutine and on up to extra idle
// helpers; wg is r's WaitGroup, which r.done releases. It returns when
// every participant has finished.
func parallel(r runner, wg *sync.WaitGroup, extra int) {
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
	r.loop()
	wg.Wait()
}
