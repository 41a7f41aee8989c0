package fs

import (
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Fault is what the mem backend does to one I/O instead of (or besides)
// performing it.
type Fault struct {
	// Err fails the I/O with this errno (EIO, ENOSPC, ...); nothing is
	// transferred.
	Err syscall.Errno
	// Short makes a read return only the first half of the bytes it would
	// have returned (a short read that is not at EOF).
	Short bool
	// Delay holds the completion back this long.
	Delay time.Duration
}

// FaultInfo describes an I/O to a Faults.Hook.
type FaultInfo struct {
	Op   Op     // the ring's direction
	Name string // the file's name in the store
	Off  int64  // file offset in bytes
	Len  int    // request length in bytes
	Tag  uint64 // the request's tag
}

// Faults configures the mem backend's fault injection (in the spirit of
// pebble's errorfs). Probabilities are per I/O, drawn from a generator
// seeded by Seed. A non-nil Hook decides instead of the probabilities.
type Faults struct {
	Seed      uint64  // seeds the fault and reorder generators
	ShortRead float64 // probability a read is cut to half its length
	EIO       float64 // probability an I/O fails with EIO
	ENOSPC    float64 // probability a write fails with ENOSPC
	// Latency delays every completion; I/O then runs on worker goroutines,
	// so completions also arrive out of order.
	Latency time.Duration
	// Reorder shuffles each dispatched batch before running it.
	Reorder bool
	// Capacity, when > 0, is the store's size limit in bytes of allocated
	// pages; a write that needs more fails with ENOSPC.
	Capacity int64
	// Hook, when non-nil, decides each I/O's fault (called from worker
	// goroutines; must be safe for concurrent use).
	Hook func(FaultInfo) Fault
}

const memPage = 4096

type memFile struct {
	mu    sync.RWMutex
	pages map[int64]*[memPage]byte
	size  int64
	mtime time.Time
}

// MemStore is the mem backend's in-memory file system: sparse files whose
// unwritten pages read as zeros (holes). It is the oracle the conformance
// suite compares other backends with, and it injects faults. Safe for
// concurrent use.
type MemStore struct {
	mu     sync.Mutex
	files  map[string]*memFile
	faults Faults
	rng    *rand.Rand
	pages  int64
}

// NewMemStore returns an empty store that injects f.
func NewMemStore(f Faults) *MemStore {
	s := &MemStore{files: map[string]*memFile{}}
	s.SetFaults(f)
	return s
}

// SetFaults replaces the faults the store injects from now on.
func (s *MemStore) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
}

// Names returns the store's file names, sorted.
func (s *MemStore) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.files))
	for n := range s.files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Remove deletes a file from the store (open Files keep their data).
func (s *MemStore) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[name]; !ok {
		return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOENT}
	}
	delete(s.files, name)
	return nil
}

func (s *MemStore) decide(op Op, name string, sq *slotReq) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if f.Hook != nil {
		s.mu.Unlock()
		ft := f.Hook(FaultInfo{Op: op, Name: name, Off: sq.off, Len: sq.reg.n, Tag: sq.tag})
		s.mu.Lock()
		if ft.Delay == 0 {
			ft.Delay = f.Latency
		}
		return ft
	}
	ft := Fault{Delay: f.Latency}
	if f.EIO > 0 && s.rng.Float64() < f.EIO {
		ft.Err = syscall.EIO
	} else if op == Write && f.ENOSPC > 0 && s.rng.Float64() < f.ENOSPC {
		ft.Err = syscall.ENOSPC
	} else if op == Read && f.ShortRead > 0 && s.rng.Float64() < f.ShortRead {
		ft.Short = true
	}
	return ft
}

func (s *MemStore) open(name string, flag int) (*memFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[name]
	switch {
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EEXIST}
	case !ok:
		f = &memFile{pages: map[int64]*[memPage]byte{}, mtime: time.Now()}
		s.files[name] = f
	}
	if flag&os.O_TRUNC != 0 && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		f.mu.Lock()
		s.pages -= int64(len(f.pages))
		f.pages = map[int64]*[memPage]byte{}
		f.size = 0
		f.mu.Unlock()
	}
	return f, nil
}

// readAt copies file bytes into b; holes read as zeros. It returns bytes
// read (short at EOF) or -errno (EINVAL when off+len(b) overflows int64).
func (f *memFile) readAt(b []byte, off int64, forbidHoles bool) int64 {
	if off > math.MaxInt64-int64(len(b)) {
		return -int64(syscall.EINVAL) // off+len overflows, as the kernel's rw_verify_area
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if off >= f.size {
		return 0
	}
	n := int64(len(b))
	if off+n > f.size {
		n = f.size - off
	}
	for done := int64(0); done < n; {
		p := (off + done) / memPage
		po := (off + done) % memPage
		k := min(int64(memPage)-po, n-done)
		if pg := f.pages[p]; pg != nil {
			copy(b[done:done+k], pg[po:po+k])
		} else {
			if forbidHoles {
				return -int64(syscall.ENODATA)
			}
			clear(b[done : done+k])
		}
		done += k
	}
	return n
}

// writeAt stores b at off, allocating pages (ENOSPC past Faults.Capacity);
// it returns len(b) or -errno (EINVAL when off+len(b) overflows int64).
func (f *memFile) writeAt(s *MemStore, b []byte, off int64) int64 {
	n := int64(len(b))
	if off > math.MaxInt64-n {
		return -int64(syscall.EINVAL) // off+len overflows, as the kernel's rw_verify_area
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var need int64
	for p := off / memPage; p <= (off+n-1)/memPage; p++ {
		if f.pages[p] == nil {
			need++
		}
	}
	if need > 0 {
		s.mu.Lock()
		if s.faults.Capacity > 0 && (s.pages+need)*memPage > s.faults.Capacity {
			s.mu.Unlock()
			return -int64(syscall.ENOSPC)
		}
		s.pages += need
		s.mu.Unlock()
	}
	for done := int64(0); done < n; {
		p := (off + done) / memPage
		po := (off + done) % memPage
		k := min(int64(memPage)-po, n-done)
		pg := f.pages[p]
		if pg == nil {
			pg = new([memPage]byte)
			f.pages[p] = pg
		}
		copy(pg[po:po+k], b[done:done+k])
		done += k
	}
	if off+n > f.size {
		f.size = off + n
	}
	f.mtime = time.Now()
	return n
}

// memHandle is an open mem file.
type memHandle struct {
	s    *MemStore
	name string
	f    *memFile
}

type memInfo struct {
	name  string
	size  int64
	mtime time.Time
}

// Name implements fs.FileInfo.
func (i memInfo) Name() string { return i.name }

// Size implements fs.FileInfo.
func (i memInfo) Size() int64 { return i.size }

// Mode implements fs.FileInfo: mem files are regular, 0644.
func (i memInfo) Mode() fs.FileMode { return 0o644 }

// ModTime implements fs.FileInfo.
func (i memInfo) ModTime() time.Time { return i.mtime }

// IsDir implements fs.FileInfo; mem holds no directories.
func (i memInfo) IsDir() bool { return false }

// Sys implements fs.FileInfo; there is no underlying data source.
func (i memInfo) Sys() any { return nil }

func (h *memHandle) fd() int { return -1 }
func (h *memHandle) stat() (os.FileInfo, error) {
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	return memInfo{name: h.name, size: h.f.size, mtime: h.f.mtime}, nil
}
func (h *memHandle) sync() error  { return nil }
func (h *memHandle) close() error { return nil }

// memBackend serves files from a MemStore.
type memBackend struct {
	s       *MemStore
	workers int
	mu      sync.Mutex
	pool    *workerPool
}

func newMemBackend(s *MemStore, workers int) *memBackend {
	return &memBackend{s: s, workers: workers}
}

func (m *memBackend) features() Features {
	return Features{Backend: "mem", ZeroCopy: true, ForbidReadHoles: true}
}

func (m *memBackend) openFile(name string, flag int, perm os.FileMode) (fileImpl, error) {
	if name == "" {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	}
	f, err := m.s.open(name, flag)
	if err != nil {
		return nil, err
	}
	return &memHandle{s: m.s, name: name, f: f}, nil
}

func (m *memBackend) registerFile(f *os.File) (fileImpl, error) {
	return nil, fmt.Errorf("%w: mem backend cannot register an *os.File", ErrUnsupported)
}

func (m *memBackend) newEngine(r *Ring) (engine, error) {
	do := func(op Op, sq *slotReq, flags RingFlags) int64 {
		h := sq.file.impl.(*memHandle)
		b := sq.reg.Bytes()
		ft := m.s.decide(op, h.name, sq)
		if ft.Delay > 0 {
			time.Sleep(ft.Delay)
		}
		if ft.Err != 0 {
			return -int64(ft.Err)
		}
		if op == Write {
			return h.f.writeAt(m.s, b, sq.off)
		}
		n := h.f.readAt(b, sq.off, flags&ForbidReadHoles != 0)
		if ft.Short && n > 0 {
			n /= 2
		}
		return n
	}
	m.s.mu.Lock()
	f := m.s.faults
	m.s.mu.Unlock()
	var pool *workerPool
	if f.Latency > 0 || f.Hook != nil {
		m.mu.Lock()
		if m.pool == nil {
			m.pool = newWorkerPool(m.workers)
		}
		pool = m.pool
		m.mu.Unlock()
	}
	e := newPoolEngine(r, pool, do)
	if f.Reorder {
		e.shufRN = rand.New(rand.NewPCG(f.Seed+1, uint64(r.opts.Entries)))
	}
	return e, nil
}

func (m *memBackend) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool != nil {
		m.pool.close()
	}
	return nil
}
