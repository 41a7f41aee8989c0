package fs

import (
	"runtime"
	"sync"
	"sync/atomic"
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
type ioFunc func(op Op, io *IO, flags RingFlags) int64

// job is one request handed to a worker.
type job struct {
	e    *poolEngine
	slot int32
}

// spinRounds is how many times a worker or waiter yields and polls before
// it parks: parking and waking a goroutine costs a futex round trip, more
// than a page-cache pread, so a short spin keeps the pool busy at depth.
const spinRounds = 32

// workerPool runs jobs on a fixed set of goroutines (the posix backend's
// pread/pwrite workers, and the mem backend's latency workers). The queue
// is a mutex-protected ring buffer: a batch is queued under one lock, and
// only as many parked workers are woken as there are new jobs.
type workerPool struct {
	mu     sync.Mutex
	q      []job // ring buffer, len is a power of two
	head   int   // next job to take
	n      int   // jobs queued
	idle   int   // parked workers not yet sent a wake token
	closed bool
	wake   chan struct{} // one token per woken worker
	wg     sync.WaitGroup
	once   sync.Once
}

func newWorkerPool(workers int) *workerPool {
	p := &workerPool{q: make([]job, 1024), wake: make(chan struct{}, workers)}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *workerPool) work() {
	defer p.wg.Done()
	for {
		j, ok := p.take(true)
		if !ok {
			return
		}
		j.e.run(j.slot)
	}
}

// take returns the next job. With block it spins, then parks until a job
// arrives; it returns false when the pool is closed (block) or empty.
func (p *workerPool) take(block bool) (job, bool) {
	spins := 0
	p.mu.Lock()
	for p.n == 0 {
		if p.closed || !block {
			p.mu.Unlock()
			return job{}, false
		}
		if spins < spinRounds {
			spins++
			p.mu.Unlock()
			runtime.Gosched()
			p.mu.Lock()
			continue
		}
		p.idle++
		p.mu.Unlock()
		<-p.wake
		spins = 0
		p.mu.Lock()
	}
	j := p.q[p.head]
	p.q[p.head] = job{}
	p.head = (p.head + 1) & (len(p.q) - 1)
	p.n--
	p.mu.Unlock()
	return j, true
}

// push queues the batch's slots for e and wakes parked workers.
func (p *workerPool) push(e *poolEngine, batch []IO) {
	p.mu.Lock()
	for p.n+len(batch) > len(p.q) {
		q := make([]job, 2*len(p.q))
		for i := range p.n {
			q[i] = p.q[(p.head+i)&(len(p.q)-1)]
		}
		p.q, p.head = q, 0
	}
	for _, io := range batch {
		p.q[(p.head+p.n)&(len(p.q)-1)] = job{e: e, slot: io.Slot}
		p.n++
	}
	wake := min(p.idle, len(batch))
	p.idle -= wake
	p.mu.Unlock()
	for range wake {
		p.wake <- struct{}{}
	}
}

func (p *workerPool) close() {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		wake := p.idle
		p.idle = 0
		p.mu.Unlock()
		for range wake {
			p.wake <- struct{}{}
		}
		p.wg.Wait()
	})
}

// poolEngine is the engine of the posix and mem backends: requests run on
// a worker pool (or inline, for mem without latency); completions collect
// in a mutex-protected list and a parked waiter is woken only once enough
// are there.
type poolEngine struct {
	opts RingOpts
	pool *workerPool // nil: run inline in submit
	do   ioFunc
	ios  []IO // by slot: the requests submitted and not yet run

	cmu     sync.Mutex
	ndone   atomic.Int32 // len(done), readable without cmu
	done    []IOResult   // completions not yet reaped (cap: ring entries)
	waiting int          // >0: a parked waiter wants this many
	notify  chan struct{}
	timer   *time.Timer
}

func newPoolEngine(o RingOpts, pool *workerPool, do ioFunc) *poolEngine {
	return &poolEngine{opts: o, pool: pool, do: do, ios: make([]IO, o.Entries), done: make([]IOResult, 0, o.Entries), notify: make(chan struct{}, 1)}
}

func (e *poolEngine) run(slot int32) {
	io := &e.ios[slot]
	res := e.do(e.opts.Op, io, e.opts.Flags)
	*io = IO{}
	e.complete(slot, res)
}

// complete records a finished I/O and wakes a waiter that has enough.
func (e *poolEngine) complete(slot int32, res int64) {
	e.cmu.Lock()
	e.done = append(e.done, IOResult{Slot: slot, Res: res})
	e.ndone.Store(int32(len(e.done)))
	signal := e.waiting > 0 && len(e.done) >= e.waiting
	if signal {
		e.waiting = 0
	}
	e.cmu.Unlock()
	if signal {
		select {
		case e.notify <- struct{}{}:
		default:
		}
	}
}

// Submit implements Engine.
func (e *poolEngine) Submit(ios []IO) error {
	if e.pool == nil {
		for i := range ios {
			e.complete(ios[i].Slot, e.do(e.opts.Op, &ios[i], e.opts.Flags))
		}
		return nil
	}
	for _, io := range ios {
		e.ios[io.Slot] = io
	}
	e.pool.push(e, ios)
	return nil
}

// Reap implements Engine.
func (e *poolEngine) Reap(out []IOResult) int {
	if e.ndone.Load() == 0 {
		return 0
	}
	e.cmu.Lock()
	n := copy(out, e.done)
	rest := copy(e.done, e.done[n:])
	e.done = e.done[:rest]
	e.ndone.Store(int32(rest))
	e.cmu.Unlock()
	return n
}

func (e *poolEngine) ready() int { return int(e.ndone.Load()) }

// Block implements Engine.
func (e *poolEngine) Block(done <-chan struct{}, need int, until time.Time) {
	if need < 1 {
		need = 1
	}
	if e.pool != nil {
		for range spinRounds {
			if e.ready() >= need {
				return
			}
			runtime.Gosched()
		}
	}
	e.cmu.Lock()
	if len(e.done) >= need {
		e.cmu.Unlock()
		return
	}
	e.waiting = need
	e.cmu.Unlock()
	var tc <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			d = 1
		}
		if e.timer == nil {
			e.timer = time.NewTimer(d)
		} else {
			e.timer.Reset(d)
		}
		tc = e.timer.C
	}
	select {
	case <-e.notify:
	case <-done:
	case <-tc:
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.cmu.Lock()
	e.waiting = 0
	e.cmu.Unlock()
}

// ForgetFile implements Engine: the pool keeps no registrations.
func (e *poolEngine) ForgetFile(int) {}

// ForgetBuffer implements Engine: the pool keeps no registrations.
func (e *poolEngine) ForgetBuffer(int) {}

// Close implements Engine.
func (e *poolEngine) Close() error { return nil }
