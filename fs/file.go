package fs

import (
	"fmt"
	"os"
	"sync/atomic"
)

// File is a file registered with a Client, the reg_fd step of USRBIO
// (hf3fs_reg_fd): only registered files can be used in Ring requests.
type File struct {
	c        *Client
	impl     BackendFile
	name     string
	flag     int // open flags; the access mode decides which rings may use it
	idx      int // index in the client's file registry
	memAlign int // O_DIRECT: buffer address alignment (statx stx_dio_mem_align); 0 = none
	offAlign int // O_DIRECT: offset and length alignment (stx_dio_offset_align)
	inflight atomic.Int64
	closed   atomic.Bool
}

// maxFiles bounds the files one Client holds registered at once (and the
// io_uring registered-file table size).
const maxFiles = 4096

// OpenFile opens name (relative names resolve under the Client's root) with
// os.OpenFile's flag and perm, and registers it. With ODirect in flag
// the File records the alignment statx reports (STATX_DIOALIGN) and Prep
// enforces it (ErrAlignment). Errors: the backend's open error (an
// *os.PathError wrapping the errno), ErrClosed, ErrInvalid when maxFiles
// files are already registered.
func (c *Client) OpenFile(name string, flag int, perm os.FileMode) (*File, error) {
	p := c.path(name)
	impl, err := c.be.OpenFile(p, flag, perm)
	if err != nil {
		return nil, err
	}
	f := &File{c: c, impl: impl, name: p, flag: flag}
	if isDirect(flag) && impl.Fd() >= 0 {
		f.memAlign, f.offAlign = dioAlign(impl.Fd())
	}
	if err := c.addFile(f); err != nil {
		impl.Close()
		return nil, err
	}
	return f, nil
}

// Register registers an already open *os.File, like hf3fs_reg_fd: the
// descriptor is duplicated, so the caller may close f afterwards and must
// Close the returned File. The mem backend returns ErrUnsupported.
func (c *Client) Register(f *os.File) (*File, error) {
	if f == nil {
		return nil, errInvalidf("nil *os.File")
	}
	impl, err := c.be.RegisterFile(f)
	if err != nil {
		return nil, err
	}
	fl, err := fileFlags(impl.Fd())
	if err != nil {
		impl.Close()
		return nil, fmt.Errorf("fs: register %s: F_GETFL: %w", f.Name(), err)
	}
	ff := &File{c: c, impl: impl, name: f.Name(), flag: fl}
	if isDirect(fl) {
		ff.memAlign, ff.offAlign = dioAlign(impl.Fd())
	}
	if err := c.addFile(ff); err != nil {
		impl.Close()
		return nil, err
	}
	return ff, nil
}

func (c *Client) addFile(f *File) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	f.idx = -1
	for i, x := range c.files {
		if x == nil {
			f.idx = i
			break
		}
	}
	if f.idx < 0 {
		if len(c.files) >= maxFiles {
			return fmt.Errorf("%w: more than %d registered files", ErrInvalid, maxFiles)
		}
		f.idx = len(c.files)
		c.files = append(c.files, nil)
	}
	c.files[f.idx] = f
	return nil
}

// Name returns the path the file was opened with.
func (f *File) Name() string { return f.name }

// DirectAlign returns the O_DIRECT alignment in bytes for buffer addresses
// and for offsets and lengths, or (0, 0) when the file is not O_DIRECT.
func (f *File) DirectAlign() (mem, off int) { return f.memAlign, f.offAlign }

// Stat returns the file's metadata.
func (f *File) Stat() (os.FileInfo, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	return f.impl.Stat()
}

// Size returns the file's current length in bytes.
func (f *File) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Sync flushes written data and the file length to stable storage (fsync;
// on 3FS this is what makes a new length visible).
func (f *File) Sync() error {
	if f.closed.Load() {
		return ErrClosed
	}
	return f.impl.Sync()
}

// Close deregisters and closes the file (hf3fs_dereg_fd + close). Errors:
// ErrBusy while I/O on it is in flight.
func (f *File) Close() error {
	if f.inflight.Load() != 0 {
		return ErrBusy
	}
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	if f.inflight.Load() != 0 {
		f.closed.Store(false)
		return ErrBusy
	}
	for _, r := range f.c.liveRings() {
		r.forgetFile(f.idx)
	}
	c := f.c
	c.mu.Lock()
	if f.idx < len(c.files) && c.files[f.idx] == f {
		c.files[f.idx] = nil
	}
	c.mu.Unlock()
	return f.impl.Close()
}

// accMode masks the access mode of open flags (O_ACCMODE).
const accMode = os.O_RDONLY | os.O_WRONLY | os.O_RDWR

func (f *File) canRead() bool  { return f.flag&accMode != os.O_WRONLY }
func (f *File) canWrite() bool { return f.flag&accMode != os.O_RDONLY }
