package fs

import (
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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
	var ok bool
	if f.idx, ok = takeSlot(&c.files, f, maxFiles); !ok {
		return fmt.Errorf("%w: more than %d registered files", ErrInvalid, maxFiles)
	}
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
	if ok, err := retire(&f.inflight, &f.closed); !ok {
		return err
	}
	for _, r := range f.c.liveRings() {
		r.forgetFile(f.idx)
	}
	unslot(&f.c.mu, &f.c.files, f.idx, f)
	return f.impl.Close()
}

// retire marks a registered File or Buffer closed for its Close: false
// with ErrBusy while I/O on it is in flight (checked again after the mark,
// which is then undone), false with nil when it was closed before.
func retire(inflight *atomic.Int64, closed *atomic.Bool) (bool, error) {
	if inflight.Load() != 0 {
		return false, ErrBusy
	}
	if !closed.CompareAndSwap(false, true) {
		return false, nil
	}
	if inflight.Load() != 0 {
		closed.Store(false)
		return false, ErrBusy
	}
	return true, nil
}

// takeSlot puts x in the first free slot of a Client's registry table
// (files or buffers; the caller holds the Client's mu), growing the table
// unless it already has limit slots (limit 0: no limit), and returns the
// slot's index; false when the table is full.
func takeSlot[T comparable](table *[]T, x T, limit int) (int, bool) {
	var free T
	idx := -1
	for i, y := range *table {
		if y == free {
			idx = i
			break
		}
	}
	if idx < 0 {
		if limit > 0 && len(*table) >= limit {
			return -1, false
		}
		idx = len(*table)
		*table = append(*table, free)
	}
	(*table)[idx] = x
	return idx, true
}

// unslot frees slot idx of a Client's registry table (files or buffers),
// under mu, if it still holds x.
func unslot[T comparable](mu *sync.Mutex, table *[]T, idx int, x T) {
	mu.Lock()
	defer mu.Unlock()
	if idx < len(*table) && (*table)[idx] == x {
		var free T
		(*table)[idx] = free
	}
}

// accMode masks the access mode of open flags (O_ACCMODE).
const accMode = os.O_RDONLY | os.O_WRONLY | os.O_RDWR

func (f *File) canRead() bool  { return f.flag&accMode != os.O_WRONLY }
func (f *File) canWrite() bool { return f.flag&accMode != os.O_RDONLY }

// PunchHole deallocates n bytes of the file from offset off, keeping its
// size: the range then reads as zeros (a hole; ENODATA on a
// ForbidReadHoles ring) and frees its storage (USRBIO hf3fs_punchhole;
// fallocate FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE on posix and uring,
// the HF3FS_IOC_PUNCH_HOLE ioctl on hf3fs, dropped pages on mem). Local
// file systems zero a partial block at either end; 3FS requires off and
// off+n to be multiples of the file's chunk size and fails with EINVAL
// otherwise. I/O in flight on the range races with the punch, as with
// the system call.
//
// Errors: ErrInvalid for off < 0, n <= 0 or off+n past the largest int64
// (the message names the argument); an *os.PathError wrapping EBADF for a
// file opened read-only; ErrUnsupported where the backend cannot punch
// holes (off Linux); ErrClosed after Close; else the backend's error.
func (f *File) PunchHole(off, n int64) error {
	if off < 0 {
		return errInvalidf("PunchHole: offset %d < 0", off)
	}
	if n <= 0 {
		return errInvalidf("PunchHole: length %d <= 0", n)
	}
	if off > math.MaxInt64-n {
		return errInvalidf("PunchHole: offset %d + length %d overflows int64", off, n)
	}
	if f.closed.Load() {
		return ErrClosed
	}
	if !f.canWrite() {
		return &os.PathError{Op: "punchhole", Path: f.name, Err: syscall.EBADF}
	}
	hp, ok := f.impl.(HolePuncher)
	if !ok {
		return fmt.Errorf("%w: backend %s cannot punch holes", ErrUnsupported, f.c.feat.Backend)
	}
	return hp.PunchHole(off, n)
}

// Hardlink makes newname a hard link to the existing file oldname
// (USRBIO hf3fs_hardlink: the HF3FS_IOC_HARDLINK ioctl on hf3fs, link(2)
// on posix and uring, a second name for the stored file on mem). Relative
// names resolve under the Client's root. Errors: an *os.LinkError
// wrapping EEXIST (errors.Is os.ErrExist) when newname exists, ENOENT
// (os.ErrNotExist) when oldname or newname's directory does not;
// ErrInvalid for an empty name; ErrUnsupported where the backend has no
// hard links; ErrClosed after Close.
func (c *Client) Hardlink(oldname, newname string) error {
	if oldname == "" || newname == "" {
		return errInvalidf("Hardlink(%q, %q): empty name", oldname, newname)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	h, ok := c.be.(Hardlinker)
	if !ok {
		return fmt.Errorf("%w: backend %s has no hard links", ErrUnsupported, c.feat.Backend)
	}
	return h.Hardlink(c.path(oldname), c.path(newname))
}
