package errorfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
)

// Op selects which I/O a Rule applies to.
type Op uint8

// Rule directions.
const (
	Any    Op = iota // reads and writes
	Reads            // reads only
	Writes           // writes only
)

// Info describes one I/O to a Rule's Match function.
type Info struct {
	Op   fs.Op  // the ring's direction
	Path string // the File's name (fs.File.Name)
	Off  int64  // file offset in bytes
	Len  int    // request length in bytes
	Tag  uint64 // the request's Tag
}

// Injection is what a firing Rule does to one I/O.
type Injection struct {
	// Err fails the I/O with this errno (EIO, ENOSPC, ...): nothing is
	// transferred and the backend never sees it.
	Err syscall.Errno
	// Short transfers only the first half of the request (rounded down;
	// requests of one byte are not cut): a short read that is not at end of
	// file, or a short write.
	Short bool
	// Latency holds the completion back this long after submission.
	Latency time.Duration
	// Hang holds the completion back until Kill: the I/O reaches the
	// wrapped backend, but its result is withheld, as if the daemon serving
	// it had stopped answering (ring timeouts, Close with I/O in flight).
	Hang bool
}

// Rule injects a fault into the I/O it matches. Every field that is set
// narrows the match; a matching I/O then fires per Nth and Prob. Every
// firing rule contributes its Injection: the first non-zero Err wins,
// Short if any says so, latencies add up.
type Rule struct {
	// Op is the direction the rule applies to (Any, Reads, Writes).
	Op Op
	// Path, when not empty, is a filepath.Match pattern the File's name or
	// its base name must match ("*.tmp", "/data/shard-0"). A malformed
	// pattern makes the wrapper's OpenFile, RegisterFile and NewEngine fail
	// with an error wrapping fs.ErrInvalid and filepath.ErrBadPattern.
	Path string
	// Off and Len, when Len > 0, limit the rule to I/O overlapping the
	// byte range [Off, Off+Len) of the file.
	Off, Len int64
	// Match, when not nil, must also return true (called with the wrapper's
	// lock held: it must not call back into the client).
	Match func(Info) bool
	// Nth, when > 0, fires on the Nth matching I/O only (1 = the first),
	// counted from Wrap or SetRules.
	Nth int
	// Prob, in (0, 1], fires on each matching I/O with this probability,
	// drawn from the generator Options.Seed seeds; 0 means always.
	Prob float64
	// Inject is the fault.
	Inject Injection
}

// Options configures Wrap.
type Options struct {
	// Seed seeds the generator of Rule.Prob and of Reorder.
	Seed uint64
	// Rules are the faults to inject.
	Rules []Rule
	// Reorder shuffles each submitted batch before the wrapped backend
	// sees it.
	Reorder bool
}

// Counts says how many faults a Backend has injected.
type Counts struct {
	Errors  int64 // I/Os failed with an errno
	Shorts  int64 // I/Os cut short
	Delayed int64 // I/Os held back by latency
}

// Backend is an fs.Backend that injects faults into another one. Open a
// Client on it with fs.WithBackendValue; the Client then owns and closes
// both. Safe for concurrent use.
type Backend struct {
	inner fs.Backend

	mu      sync.Mutex
	rules   []Rule
	matches []int
	reorder bool
	rng     *rand.Rand
	counts  Counts
	ruleErr error // a malformed rule of the last SetRules
	killed  syscall.Errno
	engines map[*engine]struct{}
}

// Wrap returns a Backend that passes every call to inner and injects the
// faults o describes into its I/O. inner must not be nil: fs.Open refuses a
// wrapper around nil with fs.ErrInvalid.
func Wrap(inner fs.Backend, o Options) *Backend {
	b := &Backend{inner: inner, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), reorder: o.Reorder, engines: map[*engine]struct{}{}}
	b.SetRules(o.Rules...)
	return b
}

// SetRules replaces the rules from now on (none: no faults) and restarts
// the Nth counters. I/O already submitted keeps its fault.
func (b *Backend) SetRules(rules ...Rule) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = append([]Rule(nil), rules...)
	b.matches = make([]int, len(rules))
	b.ruleErr = nil
	for i, r := range rules {
		if _, err := filepath.Match(r.Path, ""); err != nil {
			b.ruleErr = fmt.Errorf("errorfs: rule %d: Path %q: %w (%w)", i, r.Path, err, fs.ErrInvalid)
			break
		}
	}
}

// checkRules returns the error of a malformed rule, so that a rule that
// could never match fails loudly instead of injecting nothing.
func (b *Backend) checkRules() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ruleErr
}

// Counts returns how many faults were injected so far.
func (b *Backend) Counts() Counts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts
}

// Kill simulates the death of whatever serves the I/O (the 3FS daemon, a
// remote store): from now on every I/O not yet delivered — held for
// latency, hung, or still in the wrapped backend — completes once with
// -errno (ENOTCONN is what a dead FUSE daemon's mount returns), what was
// delivered before stays delivered, and Submit fails with errno. It wakes
// every waiting ring. Kill(0) is ignored.
func (b *Backend) Kill(errno syscall.Errno) {
	if errno == 0 {
		return
	}
	b.mu.Lock()
	b.killed = errno
	es := make([]*engine, 0, len(b.engines))
	for e := range b.engines {
		es = append(es, e)
	}
	b.mu.Unlock()
	for _, e := range es {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// dead returns the errno of Kill, or 0.
func (b *Backend) dead() syscall.Errno {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.killed
}

// WrapBuffer implements fs.BufferWrapper by passing the call through
// (fs.ErrUnsupported when the wrapped backend has none).
func (b *Backend) WrapBuffer(mem []byte, s fs.BufferSpec) (func() error, error) {
	w, ok := b.inner.(fs.BufferWrapper)
	if !ok {
		return nil, fmt.Errorf("%w: %s cannot register caller memory", fs.ErrUnsupported, b.inner.Features().Backend)
	}
	return w.WrapBuffer(mem, s)
}

// OpenBuffer implements fs.BufferOpener by passing the call through
// (fs.ErrUnsupported when the wrapped backend has none).
func (b *Backend) OpenBuffer(s fs.BufferSpec) ([]byte, func() error, error) {
	o, ok := b.inner.(fs.BufferOpener)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s cannot attach shared buffers", fs.ErrUnsupported, b.inner.Features().Backend)
	}
	return o.OpenBuffer(s)
}

// Hardlink implements fs.Hardlinker by passing the call through
// (fs.ErrUnsupported when the wrapped backend has none).
func (b *Backend) Hardlink(oldname, newname string) error {
	h, ok := b.inner.(fs.Hardlinker)
	if !ok {
		return fmt.Errorf("%w: %s has no hard links", fs.ErrUnsupported, b.inner.Features().Backend)
	}
	return h.Hardlink(oldname, newname)
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() fs.Backend { return b.inner }

// Features implements fs.Backend: the wrapped backend's, named
// "errorfs(NAME)".
func (b *Backend) Features() fs.Features {
	f := b.inner.Features()
	f.Backend = "errorfs(" + f.Backend + ")"
	return f
}

// OpenFile implements fs.Backend by passing the call through (see
// Rule.Path for the error of a malformed rule).
func (b *Backend) OpenFile(name string, flag int, perm os.FileMode) (fs.BackendFile, error) {
	if err := b.checkRules(); err != nil {
		return nil, err
	}
	return b.inner.OpenFile(name, flag, perm)
}

// RegisterFile implements fs.Backend by passing the call through.
func (b *Backend) RegisterFile(f *os.File) (fs.BackendFile, error) {
	if err := b.checkRules(); err != nil {
		return nil, err
	}
	return b.inner.RegisterFile(f)
}

// MapBuffer implements fs.Backend by passing the call through.
func (b *Backend) MapBuffer(s fs.BufferSpec) ([]byte, func() error, error) {
	return b.inner.MapBuffer(s)
}

// Close implements fs.Backend: it closes the wrapped backend.
func (b *Backend) Close() error {
	if b.inner == nil {
		return nil
	}
	return b.inner.Close()
}

// NewEngine implements fs.Backend: the wrapped backend's engine, with
// faults injected on the way in and latency on the way out.
func (b *Backend) NewEngine(o fs.RingOpts) (fs.Engine, error) {
	if err := b.checkRules(); err != nil {
		return nil, err
	}
	in, err := b.inner.NewEngine(o)
	if err != nil {
		return nil, err
	}
	e := &engine{
		b: b, inner: in, op: o.Op,
		ios:     make([]fs.IO, 0, o.Entries),
		due:     make([]time.Time, o.Entries),
		hung:    make([]bool, o.Entries),
		scratch: make([]fs.IOResult, o.Entries),
		held:    make([]held, 0, o.Entries),
		kick:    make(chan struct{}, 1),
	}
	b.mu.Lock()
	b.engines[e] = struct{}{}
	b.mu.Unlock()
	return e, nil
}

// decide returns the injection for io. Called with b.mu held.
func (b *Backend) decide(op fs.Op, io *fs.IO) Injection {
	var inj Injection
	if len(b.rules) == 0 {
		return inj
	}
	info := Info{Op: op, Path: io.File.Name(), Off: io.Off, Len: io.Buf.Len(), Tag: io.Tag}
	for i := range b.rules {
		r := &b.rules[i]
		if !r.matches(info) {
			continue
		}
		b.matches[i]++
		if r.Nth > 0 && b.matches[i] != r.Nth {
			continue
		}
		if r.Prob > 0 && b.rng.Float64() >= r.Prob {
			continue
		}
		if inj.Err == 0 {
			inj.Err = r.Inject.Err
		}
		inj.Short = inj.Short || r.Inject.Short
		inj.Hang = inj.Hang || r.Inject.Hang
		inj.Latency += r.Inject.Latency
	}
	return inj
}

func (r *Rule) matches(i Info) bool {
	switch r.Op {
	case Reads:
		if i.Op != fs.Read {
			return false
		}
	case Writes:
		if i.Op != fs.Write {
			return false
		}
	}
	if r.Path != "" {
		if ok, _ := filepath.Match(r.Path, i.Path); !ok {
			if ok, _ := filepath.Match(r.Path, filepath.Base(i.Path)); !ok {
				return false
			}
		}
	}
	if r.Len > 0 && (i.Off >= r.Off+r.Len || i.Off+int64(i.Len) <= r.Off) {
		return false
	}
	return r.Match == nil || r.Match(i)
}

// held is a result waiting for its due time.
type held struct {
	r    fs.IOResult
	due  time.Time
	hung bool // until Kill
}

// maxBlock bounds one wait on the wrapped engine, so results injected by a
// concurrent Submit are seen soon.
const maxBlock = 5 * time.Millisecond

// engine wraps one ring's engine.
type engine struct {
	b     *Backend
	inner fs.Engine
	op    fs.Op

	mu       sync.Mutex
	ios      []fs.IO       // Submit's argument to inner
	due      []time.Time   // by slot: the earliest delivery of inner's result
	hung     []bool        // by slot: the result waits for Kill
	scratch  []fs.IOResult // inner's results
	held     []held        // results not yet delivered
	innerOut int           // IOs submitted to inner, not yet reaped from it
	kick     chan struct{} // Submit injected a result
	timer    *time.Timer
}

// Submit implements fs.Engine.
func (e *engine) Submit(ios []fs.IO) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.b
	now := time.Now()
	heldBefore := len(e.held)
	e.ios = e.ios[:0]
	b.mu.Lock()
	if b.killed != 0 {
		b.mu.Unlock()
		return fmt.Errorf("errorfs: backend killed: %w", b.killed)
	}
	var c Counts
	for _, io := range ios {
		inj := b.decide(e.op, &io)
		if inj.Latency > 0 {
			c.Delayed++
		}
		if inj.Err != 0 {
			c.Errors++
			e.held = append(e.held, held{r: fs.IOResult{Slot: io.Slot, Res: -int64(inj.Err)}, due: now.Add(inj.Latency), hung: inj.Hang})
			continue
		}
		e.hung[io.Slot] = inj.Hang
		if inj.Short && io.Buf.Len() > 1 {
			if half, err := io.Buf.Buffer().Region(io.Buf.Off(), io.Buf.Len()/2); err == nil {
				c.Shorts++
				io.Buf = half
			}
		}
		e.due[io.Slot] = time.Time{}
		if inj.Latency > 0 {
			e.due[io.Slot] = now.Add(inj.Latency)
		}
		e.ios = append(e.ios, io)
	}
	if b.reorder {
		b.rng.Shuffle(len(e.ios), func(i, j int) { e.ios[i], e.ios[j] = e.ios[j], e.ios[i] })
	}
	b.mu.Unlock()
	if len(e.ios) > 0 {
		if err := e.inner.Submit(e.ios); err != nil {
			e.held = e.held[:heldBefore]
			clear(e.ios)
			return err
		}
		e.innerOut += len(e.ios)
		clear(e.ios)
	}
	b.mu.Lock()
	b.counts.Errors += c.Errors
	b.counts.Shorts += c.Shorts
	b.counts.Delayed += c.Delayed
	b.mu.Unlock()
	// Wake a Block waiting on timers only: there may be more to wait for.
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return nil
}

// pull moves the wrapped engine's finished results into held (hung, that
// is failed, after Kill). Called with e.mu held.
func (e *engine) pull(now time.Time) {
	killed := e.b.dead() != 0
	for e.innerOut > 0 {
		n := e.inner.Reap(e.scratch)
		if n == 0 {
			return
		}
		e.innerOut -= n
		for _, r := range e.scratch[:n] {
			d, hung := now, false
			if s := int(r.Slot); s >= 0 && s < len(e.due) {
				if e.due[s].After(now) {
					d = e.due[s]
				}
				hung, e.hung[s] = e.hung[s], false
			}
			hung = hung || killed
			e.held = append(e.held, held{r: r, due: d, hung: hung})
		}
	}
}

// Reap implements fs.Engine: results whose latency has passed.
func (e *engine) Reap(out []fs.IOResult) int {
	killed := e.b.dead()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	e.pull(now)
	k, w := 0, 0
	for _, h := range e.held {
		ready := !h.hung && !h.due.After(now)
		if k < len(out) && (ready || killed != 0) {
			out[k] = h.r
			if !ready {
				out[k].Res = -int64(killed)
			}
			k++
			continue
		}
		e.held[w] = h
		w++
	}
	clear(e.held[w:])
	e.held = e.held[:w]
	return k
}

// Block implements fs.Engine.
func (e *engine) Block(done <-chan struct{}, need int, until time.Time) {
	need = max(need, 1)
	killed := e.b.dead() != 0
	e.mu.Lock()
	now := time.Now()
	e.pull(now)
	ready := 0
	var next time.Time
	for _, h := range e.held {
		switch {
		case killed || !h.hung && !h.due.After(now):
			ready++
		case h.hung:
		case next.IsZero() || h.due.Before(next):
			next = h.due
		}
	}
	total, out := len(e.held), e.innerOut
	e.mu.Unlock()
	if ready >= need {
		return
	}
	deadline := until
	if !next.IsZero() && (deadline.IsZero() || next.Before(deadline)) {
		deadline = next
	}
	if out > 0 && total < need {
		if limit := now.Add(maxBlock); deadline.IsZero() || limit.Before(deadline) {
			deadline = limit
		}
		e.inner.Block(done, min(need-total, out), deadline)
		return
	}
	var tc <-chan time.Time
	if !deadline.IsZero() {
		d := max(time.Until(deadline), time.Microsecond)
		if e.timer == nil {
			e.timer = time.NewTimer(d)
		} else {
			e.timer.Reset(d)
		}
		tc = e.timer.C
		defer e.timer.Stop()
	}
	select {
	case <-done:
	case <-e.kick:
	case <-tc:
	}
}

// ForgetFile implements fs.Engine by passing the call through.
func (e *engine) ForgetFile(i int) { e.inner.ForgetFile(i) }

// ForgetBuffer implements fs.Engine by passing the call through.
func (e *engine) ForgetBuffer(i int) { e.inner.ForgetBuffer(i) }

// Close implements fs.Engine.
func (e *engine) Close() error {
	e.b.mu.Lock()
	delete(e.b.engines, e)
	e.b.mu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
	}
	return e.inner.Close()
}
