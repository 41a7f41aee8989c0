package fs_test

import (
	"io/fs"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	ffs "github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/fstest"
)

// sliceFS is a Backend written the way a third party would write one,
// with nothing but the exported API: files are byte slices in a map,
// buffers come from the Go heap, and each I/O runs inline in Submit.
type sliceFS struct {
	mu    sync.Mutex
	files map[string]*sliceFile
}

type sliceFile struct {
	name string
	mu   sync.Mutex
	data []byte
}

type sliceInfo struct {
	name string
	size int64
}

func (i sliceInfo) Name() string       { return i.name }
func (i sliceInfo) Size() int64        { return i.size }
func (i sliceInfo) Mode() fs.FileMode  { return 0o644 }
func (i sliceInfo) ModTime() time.Time { return time.Time{} }
func (i sliceInfo) IsDir() bool        { return false }
func (i sliceInfo) Sys() any           { return nil }

func (f *sliceFile) Fd() int { return -1 }
func (f *sliceFile) Stat() (os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sliceInfo{f.name, int64(len(f.data))}, nil
}
func (f *sliceFile) Sync() error  { return nil }
func (f *sliceFile) Close() error { return nil }

func (s *sliceFS) Features() ffs.Features { return ffs.Features{Backend: "slice", ZeroCopy: true} }

func (s *sliceFS) OpenFile(name string, flag int, perm os.FileMode) (ffs.BackendFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[name]
	switch {
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EEXIST}
	case !ok:
		f = &sliceFile{name: name}
		s.files[name] = f
	}
	if flag&os.O_TRUNC != 0 {
		f.mu.Lock()
		f.data = nil
		f.mu.Unlock()
	}
	return f, nil
}

func (s *sliceFS) RegisterFile(*os.File) (ffs.BackendFile, error) {
	return nil, ffs.ErrUnsupported
}

func (s *sliceFS) MapBuffer(b ffs.BufferSpec) ([]byte, func() error, error) {
	return make([]byte, b.Size), func() error { return nil }, nil
}

func (s *sliceFS) NewEngine(o ffs.RingOpts) (ffs.Engine, error) {
	return &sliceEngine{op: o.Op}, nil
}

func (s *sliceFS) Close() error { return nil }

type sliceEngine struct {
	op   ffs.Op
	mu   sync.Mutex
	done []ffs.IOResult
}

func (e *sliceEngine) Submit(ios []ffs.IO) error {
	for _, io := range ios {
		f := io.Handle.(*sliceFile)
		b := io.Buf.Bytes()
		var n int64
		f.mu.Lock()
		switch {
		case io.Off > 1<<62:
			n = -int64(syscall.EINVAL)
		case e.op == ffs.Write:
			if end := io.Off + int64(len(b)); end > int64(len(f.data)) {
				f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
			}
			n = int64(copy(f.data[io.Off:], b))
		case io.Off < int64(len(f.data)):
			n = int64(copy(b, f.data[io.Off:]))
		}
		f.mu.Unlock()
		e.mu.Lock()
		e.done = append(e.done, ffs.IOResult{Slot: io.Slot, Res: n})
		e.mu.Unlock()
	}
	return nil
}

func (e *sliceEngine) Reap(out []ffs.IOResult) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := copy(out, e.done)
	e.done = e.done[:copy(e.done, e.done[n:])]
	return n
}

// Block returns at once: every I/O has completed by the end of Submit.
func (e *sliceEngine) Block(done <-chan struct{}, need int, until time.Time) {}
func (e *sliceEngine) ForgetFile(int)                                        {}
func (e *sliceEngine) ForgetBuffer(int)                                      {}
func (e *sliceEngine) Close() error                                          { return nil }

// TestThirdPartyBackend certifies a backend built only from the exported
// interface, as fstest.RunBackend does for any Backend.
func TestThirdPartyBackend(t *testing.T) {
	fstest.RunBackend(t, func(t *testing.T, root string) ffs.Backend {
		return &sliceFS{files: map[string]*sliceFile{}}
	})
}
