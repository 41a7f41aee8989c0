package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Features says what the Client's backend does natively.
type Features struct {
	// Backend is the name of the backend in use: "mem", "posix", "uring"
	// or "hf3fs".
	Backend string
	// ZeroCopy: data moves between the file and the Buffer with no copy in
	// user space (true for every backend here; the kernel may still copy
	// through the page cache unless O_DIRECT is used).
	ZeroCopy bool
	// FixedBuffers and FixedFiles: Buffers and Files are registered with
	// the kernel (io_uring IORING_REGISTER_BUFFERS/FILES), like USRBIO's
	// iovcreate and reg_fd.
	FixedBuffers, FixedFiles bool
	// Priorities: RingOpts.Priority changes scheduling (io_uring ioprio).
	Priorities bool
	// ForbidReadHoles: the backend can honour the ForbidReadHoles flag.
	ForbidReadHoles bool
	// FlatNames: the backend has a flat namespace (mem); file names are
	// passed to OpenFile as given instead of being resolved under the
	// Client's root, and Open does not require the root to exist.
	FlatNames bool
	// Note explains a fallback, e.g. why "uring" was refused and "posix"
	// is used instead. Empty when the requested backend is in use.
	Note string
}

// Option configures Open.
type Option func(*options)

type options struct {
	backend  string
	value    Backend
	useValue bool // WithBackendValue was the last backend option
	numa     int
	workers  int
	store    *MemStore
	hf3fs    HF3FSOpts
}

// WithBackend chooses the backend by name: "auto" (the default: hf3fs when
// the root is on a 3FS mount, else uring when the kernel allows io_uring,
// else posix), "hf3fs", "uring", "posix" or "mem".
// "uring" falls back to posix when the kernel refuses io_uring; Features().Note
// then says why.
func WithBackend(name string) Option {
	return func(o *options) { o.backend, o.value, o.useValue = name, nil, false }
}

// WithBackendValue opens the Client on b, any Backend: one from NewBackend,
// a wrapper such as errorfs.Wrap, or a third party's. The Client owns b
// from then on and closes it in Client.Close (also when Open fails). A nil
// b, or a wrapper whose Unwrap() Backend method returns nil (errorfs.Wrap(nil,
// …)), makes Open fail with ErrInvalid.
func WithBackendValue(b Backend) Option {
	return func(o *options) { o.value, o.useValue, o.backend = b, true, "" }
}

// WithNUMA binds the memory of every Buffer the Client makes to NUMA node
// node (USRBIO's numa argument): mbind MPOL_BIND before the first touch, so
// every page is allocated on that node. -1, the default, binds nothing.
// It applies to WrapBuffer's caller memory too (pages not touched yet).
// NewBuffer and WrapBuffer fail (wrapping ErrInvalid) for a node this
// machine does not have, and with ErrUnsupported off Linux.
func WithNUMA(node int) Option { return func(o *options) { o.numa = node } }

// WithWorkers sets the worker-pool size of the posix backend (default
// GOMAXPROCS*4).
func WithWorkers(n int) Option { return func(o *options) { o.workers = n } }

// WithMemStore makes the mem backend serve files from s, so tests can share
// a store between clients. It selects the mem backend.
func WithMemStore(s *MemStore) Option {
	return func(o *options) { o.store, o.backend, o.value, o.useValue = s, "mem", nil, false }
}

// Client is an open connection to a mount point or directory: the root
// under which relative file names resolve, the backend that moves the data,
// and the Buffers, Files and Rings made from it. It mirrors one USRBIO mount
// handle (deepseek-ai/3FS src/lib/api/UsrbIo.cc). A Client is safe for
// concurrent use; each Ring is used by one producer and one waiter at a time.
type Client struct {
	root string
	be   Backend
	feat Features
	numa int

	mu      sync.Mutex
	closed  bool      // no new objects
	done    bool      // Close finished
	buffers []*Buffer // by registry index; nil = free
	files   []*File   // by registry index; nil = free
	rings   map[*Ring]struct{}

	poolMu sync.Mutex
	pool   []*ioCtx // idle rings+buffers for ReadAt/WriteAt/ReadBatch
}

// Open opens a Client on root, a directory (or 3FS mount point) that must
// exist for the posix and uring backends; for mem it only names the store.
// Errors: ErrUnsupported for an unknown backend name, or the os error for
// a missing root.
func Open(ctx context.Context, root string, opts ...Option) (*Client, error) {
	o := options{backend: "auto", numa: -1}
	for _, f := range opts {
		f(&o)
	}
	be, err := openBackend(ctx, root, o)
	if err != nil {
		if o.value != nil {
			o.value.Close()
		}
		return nil, err
	}
	c := &Client{root: root, be: be, feat: be.Features(), numa: o.numa, rings: map[*Ring]struct{}{}}
	return c, nil
}

// openBackend checks Open's arguments and returns the backend to use.
func openBackend(ctx context.Context, root string, o options) (Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.workers < 0 {
		return nil, errInvalidf("workers %d < 0", o.workers)
	}
	if o.numa < -1 {
		return nil, errInvalidf("NUMA node %d < -1", o.numa)
	}
	if w, ok := o.value.(interface{ Unwrap() Backend }); ok && w.Unwrap() == nil {
		return nil, errInvalidf("WithBackendValue: %T wraps a nil Backend", o.value)
	}
	flat := o.backend == "mem" || o.value != nil && o.value.Features().FlatNames
	if !flat {
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("fs: open root: %w", err)
		}
		if !st.IsDir() {
			return nil, errInvalidf("root %q is not a directory", root)
		}
	}
	if o.useValue {
		if o.value == nil {
			return nil, errInvalidf("WithBackendValue(nil)")
		}
		return o.value, nil
	}
	bo := BackendOpts{Root: root, Workers: o.workers, Store: o.store, HF3FS: o.hf3fs}
	switch o.backend {
	case "auto":
		var hfNote string
		if mp, ok := detectHF3FS(root, o.hf3fs); ok {
			be, err := newHF3FSBackend(root, mp, o.hf3fs)
			if err == nil {
				return be, nil
			}
			hfNote = fmt.Sprintf("hf3fs refused (%v); ", err)
		}
		return uringOrPosix(bo, hfNote)
	case "uring":
		return uringOrPosix(bo, "")
	case "mem", "posix", "hf3fs":
		return NewBackend(o.backend, bo)
	}
	return nil, fmt.Errorf("%w: backend %q (want auto, hf3fs, uring, posix or mem)", ErrUnsupported, o.backend)
}

// uringOrPosix returns the uring backend, or posix with a Note saying why
// io_uring was refused, or ErrUnsupported where neither exists.
func uringOrPosix(o BackendOpts, note string) (Backend, error) {
	be, err := newUringBackend()
	if err != nil {
		if perr := probePosix(); perr != nil {
			return nil, perr
		}
		pb := newPosixBackend(o.Workers)
		pb.note = fmt.Sprintf("%suring refused (%v); using posix", note, err)
		return pb, nil
	}
	be.note = note
	return be, nil
}

// Backend returns the name of the backend in use ("mem", "posix", "uring",
// "hf3fs").
func (c *Client) Backend() string { return c.feat.Backend }

// Features reports what the backend does natively.
func (c *Client) Features() Features { return c.feat }

// Root returns the directory the Client was opened on.
func (c *Client) Root() string { return c.root }

// Close closes every Ring (waiting for I/O in flight), File and Buffer made
// from the Client, then the backend. It is safe to call more than once.
// When a Ring's Close times out (RingOpts.Timeout), Close returns that
// ErrTimeout at once and leaves everything else open (the backend must
// outlive the I/O in flight); calling Close again retries.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	rings := make([]*Ring, 0, len(c.rings))
	for r := range c.rings {
		rings = append(rings, r)
	}
	c.mu.Unlock()
	var errs []error
	stuck := false
	for _, r := range rings {
		err := r.Close()
		stuck = stuck || errors.Is(err, ErrTimeout)
		errs = append(errs, err)
	}
	if stuck {
		return errors.Join(errs...)
	}
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	c.poolMu.Lock()
	c.pool = nil
	c.poolMu.Unlock()
	c.mu.Lock()
	files := append([]*File(nil), c.files...)
	bufs := append([]*Buffer(nil), c.buffers...)
	c.mu.Unlock()
	for _, f := range files {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	for _, b := range bufs {
		if b != nil {
			errs = append(errs, b.Close())
		}
	}
	errs = append(errs, c.be.Close())
	return errors.Join(errs...)
}

func (c *Client) path(name string) string {
	if filepath.IsAbs(name) || c.feat.FlatNames {
		return name
	}
	return filepath.Join(c.root, name)
}

func (c *Client) liveRings() []*Ring {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := make([]*Ring, 0, len(c.rings))
	for r := range c.rings {
		rs = append(rs, r)
	}
	return rs
}
