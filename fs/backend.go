package fs

import (
	"os"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/registry"
)

// Backend moves a Client's data. The built-in backends (mem, posix, uring,
// hf3fs) implement it, wrappers such as fs/errorfs implement it around any
// other Backend, and a third party may implement one (an RDMA or a remote
// store) and open a Client on it with WithBackendValue; fs/fstest certifies
// it.
//
// The Client does all validation (regions, alignment, directions, ring
// options, closed objects) before a Backend sees a call, and serialises
// the calls the way each method documents. A Backend is closed once, by
// the Client that was opened on it, after every File, Buffer and Engine it
// made has been closed.
type Backend interface {
	// Features says what the backend does natively; Features().Backend
	// is its name. Open reads it; it must not change afterwards.
	Features() Features
	// OpenFile opens the named file with os.OpenFile's flag and perm. The
	// name is absolute, or as given when Features().FlatNames. Errors: an
	// *os.PathError wrapping the errno.
	OpenFile(name string, flag int, perm os.FileMode) (BackendFile, error)
	// RegisterFile adopts an open *os.File (hf3fs_reg_fd), duplicating the
	// descriptor: the caller keeps f. ErrUnsupported where the backend has
	// no OS files (mem).
	RegisterFile(f *os.File) (BackendFile, error)
	// MapBuffer maps the memory of a new Buffer (hf3fs_iovcreate): s.Size
	// bytes (a multiple of the page size), zeroed, that stay at one address
	// until release is called. Local backends map anonymous memory
	// (bound to s.Node when s.Node >= 0); hf3fs maps shared memory and
	// registers it with the daemon.
	MapBuffer(s BufferSpec) (mem []byte, release func() error, err error)
	// NewEngine creates the engine of one Ring with the (validated) ring
	// options (hf3fs_iorcreate4).
	NewEngine(o RingOpts) (Engine, error)
	// Close releases the backend's resources.
	Close() error
}

// BackendFile is a Backend's open file, returned by OpenFile and
// RegisterFile and handed back to the backend's Engine in each IO.
type BackendFile interface {
	// Fd returns the OS descriptor, or -1 when there is none (mem).
	Fd() int
	// Stat returns the file's metadata.
	Stat() (os.FileInfo, error)
	// Sync flushes data and length to stable storage (fsync).
	Sync() error
	// Close closes the file; called once, with no I/O in flight.
	Close() error
}

// BufferSpec describes a Buffer to MapBuffer.
type BufferSpec struct {
	ID   [16]byte // the Buffer's random id (a version 4 UUID)
	Size int      // bytes to map, a multiple of the page size, > 0
	// Len is the size the caller asked for (Size rounded it up), or 0 for
	// Size: a shared buffer's file is Len bytes long, so that OpenBuffer
	// finds the creator's size.
	Len       int
	BlockSize int // block size no I/O crosses; 0 means one block
	Node      int // NUMA node to bind the memory to, or -1 (WithNUMA)
	// Shared asks for memory another process can attach by ID (a file
	// under /dev/shm; BufferOpts.Shared). hf3fs buffers are always shared.
	Shared bool
	// Mode is the permission of the shared-memory file (0600 when 0).
	Mode os.FileMode
}

// BufferWrapper is implemented by a Backend that can register memory the
// caller already owns (Client.WrapBuffer, USRBIO hf3fs_iovwrap). mem is
// page-aligned and s.Size == len(mem); release undoes the registration
// and must not unmap mem. A Backend without it makes WrapBuffer fail with
// ErrUnsupported.
type BufferWrapper interface {
	WrapBuffer(mem []byte, s BufferSpec) (release func() error, err error)
}

// BufferOpener is implemented by a Backend that can attach a shared
// Buffer another process created (Client.OpenBuffer, USRBIO
// hf3fs_iovopen), found by s.ID and s.BlockSize; s.Size is 0 (take the
// creator's size). release unmaps the memory without destroying the
// creator's buffer. Errors: an *os.PathError wrapping ENOENT when no such
// buffer exists. A Backend without it makes OpenBuffer fail with
// ErrUnsupported.
type BufferOpener interface {
	OpenBuffer(s BufferSpec) (mem []byte, release func() error, err error)
}

// HolePuncher is implemented by a BackendFile that can deallocate a byte
// range, keeping the file size (File.PunchHole: fallocate
// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, USRBIO hf3fs_punchhole). The
// range is validated (off >= 0, n > 0, no overflow).
type HolePuncher interface {
	PunchHole(off, n int64) error
}

// Hardlinker is implemented by a Backend that can make hard links
// (Client.Hardlink, USRBIO hf3fs_hardlink). Names are resolved as for
// OpenFile. Errors: *os.LinkError wrapping EEXIST or ENOENT.
type Hardlinker interface {
	Hardlink(oldname, newname string) error
}

// IO is one request as an Engine sees it: Buf.Len() bytes between the file
// at offset Off and the memory Buf.Bytes().
type IO struct {
	// Slot is the ring slot of the request; the IOResult carries it back.
	Slot int32
	// Tag is the caller's number (Req.Tag).
	Tag uint64
	// File is the registered File (its Name, DirectAlign).
	File *File
	// Handle is what the backend's OpenFile or RegisterFile returned for
	// File.
	Handle BackendFile
	// FileIndex is File's index in the Client's file table (dense from
	// 0, reused after the File closes; below 4096), for fixed-file tables.
	FileIndex int
	// Off is the file offset in bytes, >= 0.
	Off int64
	// Buf is the memory: Buf.Bytes(), within Buf.Buffer() at Buf.Off().
	Buf Region
	// BufferIndex is the Buffer's index in the Client's buffer table (dense
	// from 0, reused after the Buffer closes), for registered-buffer tables.
	BufferIndex int
}

// IOResult is one finished IO: Res is the byte count, or -errno (a
// USRBIO CQE's result).
type IOResult struct {
	Slot int32 // the IO's Slot
	Res  int64 // bytes transferred, or -errno
}

// Engine runs the I/O of one Ring. The Ring calls Submit, ForgetFile and
// ForgetBuffer with its submission lock held, and Reap and Block with its
// completion lock held, so each side is serialised, but a Submit may run
// while a Block is waiting. Every IO submitted must come back from Reap
// exactly once (also after its File or Buffer is forgotten).
type Engine interface {
	// Submit starts ios as one batch (one io_uring_enter on uring). The
	// slice is reused after the call returns; copy what is needed later.
	Submit(ios []IO) error
	// Reap moves finished results into out without blocking and returns
	// how many it stored.
	Reap(out []IOResult) int
	// Block waits until at least need results may be reaped, until the
	// time until passes (zero: no limit) or done is closed (nil: never).
	// It may return early; the Ring calls it again.
	Block(done <-chan struct{}, need int, until time.Time)
	// ForgetFile and ForgetBuffer drop the registration of the File or
	// Buffer with that table index from the engine (a closed File or
	// Buffer), if it keeps one; no I/O on it is in flight.
	ForgetFile(index int)
	ForgetBuffer(index int)
	// Close releases the engine once no I/O is in flight.
	Close() error
}

// BackendOpts configures NewBackend.
type BackendOpts struct {
	// Root is the directory the Client resolves names under (hf3fs: a
	// path on the 3FS mount).
	Root string
	// Workers is the posix worker-pool size (0: GOMAXPROCS*4).
	Workers int
	// Store is the mem backend's store (nil: a new empty one).
	Store *MemStore
	// HF3FS configures the hf3fs backend.
	HF3FS HF3FSOpts
}

var backends = registry.Registry[Backend, BackendOpts]{Kind: "fs"}

// NewBackend constructs a built-in backend by name ("mem", "posix",
// "uring", "hf3fs"), for wrapping (fs/errorfs) or for WithBackendValue.
// "uring" here does not fall back to posix: it fails when the kernel
// refuses io_uring. Errors: an error wrapping registry.ErrUnknown for
// another name, ErrUnsupported for a backend this machine cannot run,
// ErrNotHF3FS for hf3fs when o.Root is not on a 3FS mount.
func NewBackend(name string, o BackendOpts) (Backend, error) {
	if o.Workers < 0 {
		return nil, errInvalidf("workers %d < 0", o.Workers)
	}
	if name == "hf3fs" && o.HF3FS.MountPoint != "" {
		// The registry's probe looks for a mount in mountinfo; a mount
		// point given explicitly (a test daemon's) needs none.
		return newHF3FS(o)
	}
	return backends.New(name, o)
}

func newHF3FS(o BackendOpts) (Backend, error) {
	mp, ok := detectHF3FS(o.Root, o.HF3FS)
	if !ok {
		return nil, errNotOnMount(o.Root)
	}
	be, err := newHF3FSBackend(o.Root, mp, o.HF3FS)
	if err != nil {
		return nil, err
	}
	return be, nil
}

// BackendStatus is one built-in backend and whether it is usable here.
type BackendStatus = registry.Status

// Backends lists the built-in backends, sorted by name, each with nil Err
// when it can run on this machine or the reason it cannot (for `fireflyer
// info`).
func Backends() []BackendStatus { return backends.List() }

func init() {
	backends.Register(registry.Entry[Backend, BackendOpts]{
		Name: "mem", Doc: "in-memory sparse file store (the conformance oracle)",
		New: func(o BackendOpts) (Backend, error) {
			s := o.Store
			if s == nil {
				s = NewMemStore()
			}
			return newMemBackend(s), nil
		},
	})
	backends.Register(registry.Entry[Backend, BackendOpts]{
		Name: "posix", Doc: "pread/pwrite worker pool",
		Probe: probePosix,
		New: func(o BackendOpts) (Backend, error) {
			if err := probePosix(); err != nil {
				return nil, err
			}
			return newPosixBackend(o.Workers), nil
		},
	})
	backends.Register(registry.Entry[Backend, BackendOpts]{
		Name: "uring", Doc: "io_uring with fixed buffers and files (auto picks it; falls back to posix)",
		Probe: func() error {
			be, err := newUringBackend()
			if err == nil {
				be.Close()
			}
			return err
		},
		New: func(BackendOpts) (Backend, error) {
			be, err := newUringBackend()
			if err != nil {
				return nil, err
			}
			return be, nil
		},
	})
	backends.Register(registry.Entry[Backend, BackendOpts]{
		Name: "hf3fs", Doc: "native 3FS USRBIO over a FUSE mount (auto picks it for paths on one)",
		Probe: probeHF3FS,
		New:   newHF3FS,
	})
}
