package fs

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

func uintptrOf(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// ioFunc performs one request and returns bytes or -errno.
type ioFunc func(op Op, s *slotReq, flags RingFlags) int64

// job is one request handed to a worker.
type job struct {
	e    *poolEngine
	slot int32
}

// workerPool runs jobs on a fixed set of goroutines (the posix backend's
// pread/pwrite workers, and the mem backend's latency workers).
type workerPool struct {
	jobs chan job
	wg   sync.WaitGroup
	once sync.Once
}

func newWorkerPool(n int) *workerPool {
	p := &workerPool{jobs: make(chan job, 4*n+1024)}
	p.wg.Add(n)
	for range n {
		go func() {
			defer p.wg.Done()
			for {
				j, ok := p.next()
				if !ok {
					return
				}
				j.e.run(j.slot)
			}
		}()
	}
	return p
}

// spinRounds is how many times a worker or waiter yields and polls before
// it parks: parking and waking a goroutine costs a futex round trip, more
// than a page-cache pread, so a short spin keeps the pool busy at depth.
const spinRounds = 64

// next returns the next job, spinning briefly before blocking.
func (p *workerPool) next() (job, bool) {
	for range spinRounds {
		select {
		case j, ok := <-p.jobs:
			return j, ok
		default:
		}
		runtime.Gosched()
	}
	j, ok := <-p.jobs
	return j, ok
}

func (p *workerPool) close() {
	p.once.Do(func() {
		close(p.jobs)
		p.wg.Wait()
	})
}

// poolEngine is the engine of the posix and mem backends: requests run on
// a worker pool (or inline, for mem without latency) and completions come
// back on a channel with room for every slot, so a worker never blocks.
type poolEngine struct {
	r      *Ring
	pool   *workerPool // nil: run inline in submit
	do     ioFunc
	cq     chan cqe
	stash  []cqe
	timer  *time.Timer
	shufRN *rand.Rand // mem: reorder batches when non-nil
	help   bool       // posix: a blocked Wait runs queued jobs itself
}

func newPoolEngine(r *Ring, pool *workerPool, do ioFunc) *poolEngine {
	return &poolEngine{r: r, pool: pool, do: do, cq: make(chan cqe, r.opts.Entries), stash: make([]cqe, 0, 1)}
}

func (e *poolEngine) run(slot int32) {
	s := &e.r.slots[slot]
	res := e.do(e.r.opts.Op, s, e.r.opts.Flags)
	e.cq <- cqe{slot: slot, res: res}
}

func (e *poolEngine) submit(batch []int32) error {
	if e.shufRN != nil {
		e.shufRN.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	}
	if e.pool == nil {
		for _, s := range batch {
			e.run(s)
		}
		return nil
	}
	for _, s := range batch {
		e.pool.jobs <- job{e: e, slot: s}
	}
	return nil
}

func (e *poolEngine) reap(out []cqe) int {
	n := 0
	if len(e.stash) > 0 && len(out) > 0 {
		out[0] = e.stash[0]
		e.stash = e.stash[:0]
		n++
	}
	for n < len(out) {
		select {
		case c := <-e.cq:
			out[n] = c
			n++
		default:
			return n
		}
	}
	return n
}

func (e *poolEngine) block(done <-chan struct{}, need int, until time.Time) {
	if len(e.stash) > 0 {
		return
	}
	if e.help {
		// Rather than sleep while requests wait for a worker, run one here
		// (any ring's: its completion goes to its own ring). This saves
		// two goroutine hand-offs per I/O when workers are busy.
		select {
		case j, ok := <-e.pool.jobs:
			if ok {
				j.e.run(j.slot)
				return
			}
		default:
		}
	}
	if e.pool != nil {
		for range spinRounds {
			select {
			case c := <-e.cq:
				e.stash = append(e.stash, c)
				return
			default:
			}
			runtime.Gosched()
		}
	}
	var tc <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return
		}
		if e.timer == nil {
			e.timer = time.NewTimer(d)
		} else {
			e.timer.Reset(d)
		}
		tc = e.timer.C
		defer e.timer.Stop()
	}
	select {
	case c := <-e.cq:
		e.stash = append(e.stash, c)
	case <-done:
	case <-tc:
	}
}

func (e *poolEngine) close() error { return nil }
