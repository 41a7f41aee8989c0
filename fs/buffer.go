package fs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/fireflyer-go/fireflyer/internal/mmap"
)

// BufferOpts configures NewBuffer.
type BufferOpts struct {
	// BlockSize splits the buffer into blocks no I/O may cross (USRBIO's
	// block_size, one RDMA registration per block). 0 means one block.
	// It must divide the buffer size.
	BlockSize int
	// Shared backs the buffer with a file under /dev/shm, named by the
	// buffer's ID, so another process can attach the same memory with
	// Client.OpenBuffer (USRBIO hf3fs_iovopen). hf3fs buffers are always
	// shared; on mem, posix and uring it costs the huge-page alignment of
	// anonymous memory. Close removes the file; a process that dies
	// leaves it under /dev/shm (as USRBIO's iovs). Linux only
	// (ErrUnsupported elsewhere).
	Shared bool
	// Mode is the permission of a shared buffer's /dev/shm file: 0 means
	// 0600 (only this user may attach it); widen it explicitly (0660,
	// 0666) for a peer running as another user. Bits beyond 0777 are
	// ErrInvalid. On hf3fs, 0 keeps HF3FSOpts.ShmMode.
	Mode os.FileMode
}

// Buffer is a registered I/O buffer, the Iov of USRBIO (hf3fs_iovcreate):
// page-aligned memory mapped outside the Go heap, registered with the
// backend (io_uring fixed buffers on uring), split into blocks of BlockSize
// bytes that no single I/O may cross.
type Buffer struct {
	c         *Client
	mem       []byte
	mapping   []byte // the whole mmap, page-rounded
	blockSize int
	idx       int // index in the client's buffer registry
	id        [16]byte
	release   func() error // frees mapping (from Backend.MapBuffer)
	inflight  atomic.Int64
	closed    atomic.Bool
}

// Region is a byte range [Off, Off+Len) of a Buffer, the ptr/len pair of
// hf3fs_prep_io. Make one with Buffer.Region; the zero Region is invalid.
type Region struct {
	buf *Buffer
	off int
	n   int
}

// NewBuffer maps size bytes (rounded up to the page size) and registers
// them. Errors: ErrInvalid for size <= 0 or a block size that does not
// divide the size, ErrClosed after Close.
func (c *Client) NewBuffer(size int, o BufferOpts) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: buffer size %d must be > 0", ErrInvalid, size)
	}
	page := os.Getpagesize()
	mapped := (size + page - 1) / page * page
	if err := checkBufferOpts(size, o); err != nil {
		return nil, err
	}
	id := randomID()
	mem, release, err := c.be.MapBuffer(BufferSpec{ID: id, Size: mapped, Len: size, BlockSize: o.BlockSize, Node: c.numa, Shared: o.Shared, Mode: o.Mode})
	if err != nil {
		return nil, fmt.Errorf("fs: map buffer of %d bytes: %w", size, err)
	}
	if len(mem) < size {
		if release != nil {
			release()
		}
		return nil, fmt.Errorf("%w: backend %s mapped %d bytes for a %d-byte buffer", ErrInvalid, c.feat.Backend, len(mem), size)
	}
	b := &Buffer{c: c, mem: mem[:size:size], mapping: mem, blockSize: o.BlockSize, id: id, release: release}
	return c.addBuffer(b)
}

// checkBufferOpts validates BufferOpts for a buffer of size bytes.
func checkBufferOpts(size int, o BufferOpts) error {
	if o.BlockSize < 0 || (o.BlockSize > 0 && size%o.BlockSize != 0) {
		return fmt.Errorf("%w: block size %d must be >= 0 and divide buffer size %d", ErrInvalid, o.BlockSize, size)
	}
	if o.Mode&^0o777 != 0 {
		return fmt.Errorf("%w: buffer Mode %v has bits beyond 0777", ErrInvalid, o.Mode)
	}
	return nil
}

// randomID returns a random version 4 UUID, a Buffer's id.
func randomID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as the key shows it
	id[8] = id[8]&0x3f | 0x80
	return id
}

// addBuffer enters b in the Client's buffer table (freeing it when the
// Client is closed).
func (c *Client) addBuffer(b *Buffer) (*Buffer, error) {
	if b.blockSize == 0 {
		b.blockSize = len(b.mem)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		b.free()
		return nil, ErrClosed
	}
	b.idx, _ = takeSlot(&c.buffers, b, 0)
	c.mu.Unlock()
	return b, nil
}

// WrapBuffer registers memory the caller already owns as a Buffer (USRBIO
// hf3fs_iovwrap): an mmap'd model file, a pinned buffer from another
// library, a shared-memory segment. I/O then moves data straight between
// the file and mem, with no copy: Bytes() is mem itself. mem must start on
// a page boundary (os.Getpagesize) and stay valid, unmoved, until the
// Buffer is closed; Close unregisters it and never unmaps it. With
// WithNUMA the pages not yet touched are bound to the node (mbind, as
// upstream's numa_tonode_memory). o.BlockSize splits it as for NewBuffer;
// o.Shared and o.Mode do not apply.
//
// Per backend: mem and posix use mem in place; uring registers it as a
// fixed buffer on first use (memory io_uring cannot pin, such as a
// writable mapping of a disk file, is used with plain READ/WRITE); hf3fs
// needs a MAP_SHARED mapping of a file under /dev/shm from its offset 0
// (the daemon maps that file: the symlink protocol of iovcreate, which
// upstream's Python binding also uses with iovwrap) and registers it under
// a new id.
//
// Errors: ErrInvalid for empty or unaligned mem, a bad block size, or (on
// hf3fs) memory that is not such a mapping; ErrUnsupported for a backend
// that cannot register caller memory; ErrClosed after Close.
func (c *Client) WrapBuffer(mem []byte, o BufferOpts) (*Buffer, error) {
	if len(mem) == 0 {
		return nil, errInvalidf("WrapBuffer: empty memory")
	}
	if a := uintptrOf(mem); a%uintptr(os.Getpagesize()) != 0 {
		return nil, errInvalidf("WrapBuffer: memory at %#x is not aligned to the %d-byte page", a, os.Getpagesize())
	}
	if o.Shared || o.Mode != 0 {
		return nil, errInvalidf("WrapBuffer: Shared and Mode apply to NewBuffer only")
	}
	if err := checkBufferOpts(len(mem), o); err != nil {
		return nil, err
	}
	w, ok := c.be.(BufferWrapper)
	if !ok {
		return nil, fmt.Errorf("%w: backend %s cannot register caller memory", ErrUnsupported, c.feat.Backend)
	}
	mem = mem[:len(mem):len(mem)]
	if c.numa >= 0 {
		if err := mmap.Bind(mem, c.numa); err != nil {
			switch {
			case errors.Is(err, mmap.ErrNoNode):
				err = fmt.Errorf("%w: %v", ErrInvalid, err)
			case errors.Is(err, mmap.ErrUnavailable):
				err = fmt.Errorf("%w: %v", ErrUnsupported, err)
			}
			return nil, fmt.Errorf("fs: wrap buffer: %w", err)
		}
	}
	id := randomID()
	release, err := w.WrapBuffer(mem, BufferSpec{ID: id, Size: len(mem), BlockSize: o.BlockSize, Node: c.numa})
	if err != nil {
		return nil, fmt.Errorf("fs: wrap buffer of %d bytes: %w", len(mem), err)
	}
	b := &Buffer{c: c, mem: mem, mapping: mem, blockSize: o.BlockSize, id: id, release: release}
	return c.addBuffer(b)
}

// OpenBuffer attaches, by its ID, a shared Buffer that another process
// (or another Client) created (USRBIO hf3fs_iovopen): NewBuffer with
// BufferOpts.Shared on mem, posix and uring, any NewBuffer on hf3fs. The
// memory is the creator's, mapped shared: bytes one side's I/O brings in
// are visible to the other with no copy. o.BlockSize must be the
// creator's (it is part of the buffer's name, as in a USRBIO key); the
// size is the creator's. Close unmaps this side only; the creator's Close
// destroys the buffer (a side that still has it open keeps the memory;
// on hf3fs the daemon then forgets the id, and I/O through it fails).
//
// Errors: an *os.PathError wrapping ENOENT (errors.Is os.ErrNotExist)
// when no buffer with that id and block size exists, EACCES when its mode
// does not admit this user, ErrInvalid for a bad block size or a name that
// does not lead to a /dev/shm file, ErrUnsupported where the backend
// cannot attach shared memory, ErrClosed after Close.
func (c *Client) OpenBuffer(id [16]byte, o BufferOpts) (*Buffer, error) {
	if o.BlockSize < 0 || o.Shared || o.Mode != 0 {
		return nil, errInvalidf("OpenBuffer: block size %d must be >= 0; Shared and Mode apply to NewBuffer only", o.BlockSize)
	}
	op, ok := c.be.(BufferOpener)
	if !ok {
		return nil, fmt.Errorf("%w: backend %s cannot attach shared buffers", ErrUnsupported, c.feat.Backend)
	}
	mem, release, err := op.OpenBuffer(BufferSpec{ID: id, BlockSize: o.BlockSize, Node: -1, Shared: true})
	if err != nil {
		return nil, fmt.Errorf("fs: open buffer %x: %w", id, err)
	}
	if len(mem) == 0 || o.BlockSize > 0 && len(mem)%o.BlockSize != 0 {
		if release != nil {
			release()
		}
		return nil, errInvalidf("OpenBuffer: buffer of %d bytes does not split into blocks of %d", len(mem), o.BlockSize)
	}
	b := &Buffer{c: c, mem: mem[:len(mem):len(mem)], mapping: mem, blockSize: o.BlockSize, id: id, release: release}
	return c.addBuffer(b)
}

// mapLocal maps the memory of a local backend's Buffer (mem, posix,
// uring): anonymous memory from internal/mmap, 2 MiB-aligned and advised
// MADV_HUGEPAGE from 2 MiB up (fewer, larger physically contiguous segments
// per I/O: a 1 MiB O_DIRECT read in 4 KiB pages needs 256 segments, more
// than many block devices take in one request), bound to s.Node when it is
// >= 0.
func mapLocal(s BufferSpec) ([]byte, func() error, error) {
	if s.Shared {
		return createLocalShm(s)
	}
	mem, err := mmap.Map(s.Size, mmap.Opts{Huge: true, Node: s.Node})
	if errors.Is(err, mmap.ErrUnavailable) && s.Node < 0 {
		// No anonymous mappings on this platform: Go heap memory (only
		// the mem backend gets this far there).
		return make([]byte, s.Size), func() error { return nil }, nil
	}
	if err != nil {
		switch {
		case errors.Is(err, mmap.ErrNoNode):
			err = fmt.Errorf("%w: %v", ErrInvalid, err)
		case errors.Is(err, mmap.ErrUnavailable):
			err = fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return nil, nil, err
	}
	return mem, func() error { return mmap.Unmap(mem) }, nil
}

// Bytes returns the buffer's memory. It stays valid until Close.
func (b *Buffer) Bytes() []byte { return b.mem }

// Len returns the buffer size in bytes.
func (b *Buffer) Len() int { return len(b.mem) }

// BlockSize returns the block size (the buffer size when it has one block).
func (b *Buffer) BlockSize() int { return b.blockSize }

// ID returns the buffer's random 16-byte id (USRBIO's iov id): what
// another process passes to Client.OpenBuffer to attach a shared buffer.
func (b *Buffer) ID() [16]byte { return b.id }

// Region returns [off, off+n) of the buffer. Errors: ErrRange when the
// range is empty, lies outside the buffer or crosses a block boundary.
func (b *Buffer) Region(off, n int) (Region, error) {
	if off < 0 || n <= 0 || off > len(b.mem)-n {
		return Region{}, fmt.Errorf("%w: region [%d,%d+%d) outside buffer of %d bytes", ErrRange, off, off, n, len(b.mem))
	}
	if off/b.blockSize != (off+n-1)/b.blockSize {
		return Region{}, fmt.Errorf("%w: region [%d,%d+%d) crosses a %d-byte block boundary", ErrRange, off, off, n, b.blockSize)
	}
	return Region{buf: b, off: off, n: n}, nil
}

// Close unregisters and unmaps the buffer. Errors: ErrBusy while I/O on it
// is in flight (the memory must outlive the I/O).
func (b *Buffer) Close() error {
	if ok, err := retire(&b.inflight, &b.closed); !ok {
		return err
	}
	for _, r := range b.c.liveRings() {
		r.forgetBuffer(b.idx)
	}
	unslot(&b.c.mu, &b.c.buffers, b.idx, b)
	return b.free()
}

// free releases the buffer's memory (and, on hf3fs, its registration).
func (b *Buffer) free() error {
	if b.release == nil {
		return nil
	}
	return b.release()
}

// Buffer returns the region's buffer.
func (r Region) Buffer() *Buffer { return r.buf }

// Off returns the region's offset in its buffer.
func (r Region) Off() int { return r.off }

// Len returns the region's length in bytes.
func (r Region) Len() int { return r.n }

// Bytes returns the region's memory.
func (r Region) Bytes() []byte {
	if r.buf == nil {
		return nil
	}
	return r.buf.mem[r.off : r.off+r.n : r.off+r.n]
}
