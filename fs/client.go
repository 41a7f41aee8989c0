package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// Features says what the Client's backend does natively.
type Features struct {
	// Backend is the name of the backend in use: "mem", "posix" or "uring".
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
	// Note explains a fallback, e.g. why "uring" was refused and "posix"
	// is used instead. Empty when the requested backend is in use.
	Note string
}

// backend is what a Client delegates to. mem, posix and uring implement it.
type backend interface {
	features() Features
	openFile(name string, flag int, perm os.FileMode) (fileImpl, error)
	registerFile(f *os.File) (fileImpl, error)
	newEngine(r *Ring) (engine, error)
	close() error
}

// Option configures Open.
type Option func(*options)

type options struct {
	backend string
	numa    int
	workers int
	store   *MemStore
}

// WithBackend chooses the backend by name: "auto" (the default: uring when
// the kernel allows io_uring, else posix), "uring", "posix" or "mem".
// "uring" falls back to posix when the kernel refuses io_uring; Features().Note
// then says why.
func WithBackend(name string) Option { return func(o *options) { o.backend = name } }

// WithNUMA records the NUMA node buffers should live on (USRBIO's numa
// argument). -1, the default, binds nothing; local backends ignore it.
func WithNUMA(node int) Option { return func(o *options) { o.numa = node } }

// WithWorkers sets the worker-pool size of the posix backend (default
// GOMAXPROCS*4) and of the mem backend when it injects latency (default 4).
func WithWorkers(n int) Option { return func(o *options) { o.workers = n } }

// WithMemStore makes the mem backend serve files from s, so tests can share
// a store between clients and inject faults into it. It selects the mem
// backend.
func WithMemStore(s *MemStore) Option {
	return func(o *options) { o.store = s; o.backend = "mem" }
}

// Client is an open connection to a mount point or directory: the root
// under which relative file names resolve, the backend that moves the data,
// and the Buffers, Files and Rings made from it. It mirrors one USRBIO mount
// handle (deepseek-ai/3FS src/lib/api/UsrbIo.cc). A Client is safe for
// concurrent use; each Ring is used by one producer and one waiter at a time.
type Client struct {
	root string
	be   backend
	feat Features
	numa int

	mu      sync.Mutex
	closed  bool
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := options{backend: "auto", numa: -1}
	for _, f := range opts {
		f(&o)
	}
	if o.workers < 0 {
		return nil, fmt.Errorf("%w: workers %d < 0", ErrInvalid, o.workers)
	}
	c := &Client{root: root, numa: o.numa, rings: map[*Ring]struct{}{}}
	if o.backend != "mem" {
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("fs: open root: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: root %q is not a directory", ErrInvalid, root)
		}
	}
	workers := o.workers
	switch o.backend {
	case "mem":
		s := o.store
		if s == nil {
			s = NewMemStore(Faults{})
		}
		if workers == 0 {
			workers = 4
		}
		c.be = newMemBackend(s, workers)
	case "posix":
		if workers == 0 {
			workers = runtime.GOMAXPROCS(0) * 4
		}
		c.be = newPosixBackend(workers)
	case "uring", "auto":
		be, err := newUringBackend()
		if err != nil {
			if workers == 0 {
				workers = runtime.GOMAXPROCS(0) * 4
			}
			pb := newPosixBackend(workers)
			pb.note = fmt.Sprintf("uring refused (%v); using posix", err)
			c.be = pb
		} else {
			c.be = be
		}
	default:
		return nil, fmt.Errorf("%w: backend %q (want auto, uring, posix or mem)", ErrUnsupported, o.backend)
	}
	c.feat = c.be.features()
	return c, nil
}

// Backend returns the name of the backend in use ("mem", "posix", "uring").
func (c *Client) Backend() string { return c.feat.Backend }

// Features reports what the backend does natively.
func (c *Client) Features() Features { return c.feat }

// Root returns the directory the Client was opened on.
func (c *Client) Root() string { return c.root }

// Close closes every Ring (waiting for I/O in flight), File and Buffer made
// from the Client, then the backend. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
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
	for _, r := range rings {
		errs = append(errs, r.Close())
	}
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
	errs = append(errs, c.be.close())
	return errors.Join(errs...)
}

func (c *Client) path(name string) string {
	if filepath.IsAbs(name) || c.feat.Backend == "mem" {
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
