package fs

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

const memPage = 4096

type memFile struct {
	mu    sync.RWMutex
	pages map[int64]*[memPage]byte
	size  int64
	mtime time.Time
}

// MemStore is the mem backend's in-memory file system: sparse files whose
// unwritten pages read as zeros (holes). It is the oracle the conformance
// suite compares other backends with. Faults (EIO, short I/O, ENOSPC,
// latency) are injected around any backend by package fs/errorfs. Safe for
// concurrent use.
type MemStore struct {
	mu       sync.Mutex
	files    map[string]*memFile
	capacity int64
	pages    int64
}

// NewMemStore returns an empty store with no size limit.
func NewMemStore() *MemStore {
	return &MemStore{files: map[string]*memFile{}}
}

// SetCapacity limits the store to bytes of allocated 4 KiB pages (0: no
// limit): a write that needs more fails with ENOSPC, like a full disk.
func (s *MemStore) SetCapacity(bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capacity = max(bytes, 0)
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

// writeAt stores b at off, allocating pages (ENOSPC past the capacity);
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
		if s.capacity > 0 && (s.pages+need)*memPage > s.capacity {
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

// Fd implements BackendFile: a mem file has no descriptor.
func (h *memHandle) Fd() int { return -1 }

// Stat implements BackendFile.
func (h *memHandle) Stat() (os.FileInfo, error) {
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	return memInfo{name: h.name, size: h.f.size, mtime: h.f.mtime}, nil
}

// Sync implements BackendFile; memory is as stable as it gets.
func (h *memHandle) Sync() error { return nil }

// Close implements BackendFile.
func (h *memHandle) Close() error { return nil }

// memBackend serves files from a MemStore; I/O runs inline in Submit.
type memBackend struct{ s *MemStore }

func newMemBackend(s *MemStore) *memBackend { return &memBackend{s: s} }

// Features implements Backend.
func (m *memBackend) Features() Features {
	return Features{Backend: "mem", ZeroCopy: true, ForbidReadHoles: true, FlatNames: true}
}

// OpenFile implements Backend.
func (m *memBackend) OpenFile(name string, flag int, perm os.FileMode) (BackendFile, error) {
	if name == "" {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	}
	f, err := m.s.open(name, flag)
	if err != nil {
		return nil, err
	}
	return &memHandle{s: m.s, name: name, f: f}, nil
}

// RegisterFile implements Backend: ErrUnsupported, mem has no OS files.
func (m *memBackend) RegisterFile(f *os.File) (BackendFile, error) {
	return nil, fmt.Errorf("%w: mem backend cannot register an *os.File", ErrUnsupported)
}

// MapBuffer implements Backend with anonymous memory.
func (m *memBackend) MapBuffer(s BufferSpec) ([]byte, func() error, error) { return mapLocal(s) }

// NewEngine implements Backend.
func (m *memBackend) NewEngine(o RingOpts) (Engine, error) {
	return newPoolEngine(o, nil, m.do), nil
}

func (m *memBackend) do(op Op, io *IO, flags RingFlags) int64 {
	h, ok := io.Handle.(*memHandle)
	if !ok {
		return -int64(syscall.EBADF)
	}
	b := io.Buf.Bytes()
	if op == Write {
		return h.f.writeAt(m.s, b, io.Off)
	}
	return h.f.readAt(b, io.Off, flags&ForbidReadHoles != 0)
}

// Close implements Backend.
func (m *memBackend) Close() error { return nil }

// punch deallocates [off, off+n) of the file, keeping its size: whole
// pages in the range are dropped (they read as holes), partial pages are
// zeroed.
func (f *memFile) punch(s *MemStore, off, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := off + n
	var dropped int64
	for p, pg := range f.pages {
		ps, pe := p*memPage, (p+1)*memPage
		if pe <= off || ps >= end {
			continue
		}
		if ps >= off && pe <= end {
			delete(f.pages, p)
			dropped++
			continue
		}
		clear(pg[max(off, ps)-ps : min(end, pe)-ps])
	}
	if dropped > 0 {
		s.mu.Lock()
		s.pages -= dropped
		s.mu.Unlock()
	}
	f.mtime = time.Now()
}

// link makes newname another name of oldname's file.
func (s *MemStore) link(oldname, newname string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[oldname]
	switch {
	case !ok:
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	if _, ok := s.files[newname]; ok {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EEXIST}
	}
	s.files[newname] = f
	return nil
}

// PunchHole implements HolePuncher.
func (h *memHandle) PunchHole(off, n int64) error {
	h.f.punch(h.s, off, n)
	return nil
}

// WrapBuffer implements BufferWrapper: the memory is used in place.
func (m *memBackend) WrapBuffer(mem []byte, s BufferSpec) (func() error, error) {
	return func() error { return nil }, nil
}

// OpenBuffer implements BufferOpener: a shared Buffer under /dev/shm.
func (m *memBackend) OpenBuffer(s BufferSpec) ([]byte, func() error, error) {
	return openLocalShm(s)
}

// Hardlink implements Hardlinker: another name for the same stored file.
func (m *memBackend) Hardlink(oldname, newname string) error { return m.s.link(oldname, newname) }
