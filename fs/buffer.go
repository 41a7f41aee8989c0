package fs

import (
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufferOpts configures NewBuffer.
type BufferOpts struct {
	// BlockSize splits the buffer into blocks no I/O may cross (USRBIO's
	// block_size, one RDMA registration per block). 0 means one block.
	// It must divide the buffer size.
	BlockSize int
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
	release   func() error // frees mapping (nil: unmapBuffer)
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

// maxBuffers is the io_uring registered-buffer table size: a Client may
// hold more buffers, but those past it (and any over 1 GiB) are used with
// plain READ/WRITE instead of fixed buffers.
const maxBuffers = 1024

// NewBuffer maps size bytes (rounded up to the page size) and registers
// them. Errors: ErrInvalid for size <= 0 or a block size that does not
// divide the size, ErrClosed after Close.
func (c *Client) NewBuffer(size int, o BufferOpts) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: buffer size %d must be > 0", ErrInvalid, size)
	}
	page := unix.Getpagesize()
	mapped := (size + page - 1) / page * page
	if o.BlockSize < 0 || (o.BlockSize > 0 && size%o.BlockSize != 0) {
		return nil, fmt.Errorf("%w: block size %d must be >= 0 and divide buffer size %d", ErrInvalid, o.BlockSize, size)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as the key shows it
	id[8] = id[8]&0x3f | 0x80
	var mem []byte
	var release func() error
	var err error
	if sb, ok := c.be.(sharedBuffers); ok {
		mem, release, err = sb.mapShared(id, mapped, o.BlockSize)
	} else {
		mem, err = mapBuffer(mapped)
	}
	if err != nil {
		return nil, fmt.Errorf("fs: map buffer of %d bytes: %w", size, err)
	}
	b := &Buffer{c: c, mem: mem[:size:size], mapping: mem, blockSize: o.BlockSize, id: id, release: release}
	if b.blockSize == 0 {
		b.blockSize = size
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		b.free()
		return nil, ErrClosed
	}
	b.idx = -1
	for i, x := range c.buffers {
		if x == nil {
			b.idx = i
			break
		}
	}
	if b.idx < 0 {
		b.idx = len(c.buffers)
		c.buffers = append(c.buffers, nil)
	}
	c.buffers[b.idx] = b
	c.mu.Unlock()
	return b, nil
}

// hugePage is the transparent huge page size buffers of at least this size
// are aligned to and advised for: fewer, larger physically contiguous
// segments per I/O (a 1 MiB O_DIRECT read in 4 KiB pages needs 256
// segments, more than many block devices take in one request).
const hugePage = 2 << 20

// mapBuffer maps n bytes of anonymous memory; from 2 MiB up the mapping is
// 2 MiB-aligned and advised MADV_HUGEPAGE (best effort). Free it with
// unmapBuffer (not unix.Munmap, which only takes whole unix.Mmap results).
func mapBuffer(n int) ([]byte, error) {
	extra := 0
	if n >= hugePage {
		extra = hugePage
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n+extra), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	raw := unsafe.Slice((*byte)(p), n+extra)
	if extra == 0 {
		return raw, nil
	}
	lead := (hugePage - int(uintptr(p)%hugePage)) % hugePage
	if lead > 0 {
		unmapBuffer(raw[:lead])
	}
	if tail := extra - lead; tail > 0 {
		unmapBuffer(raw[lead+n:])
	}
	mem := raw[lead : lead+n : lead+n]
	adviseHuge(mem)
	return mem, nil
}

func unmapBuffer(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.MunmapPtr(unsafe.Pointer(&b[0]), uintptr(len(b)))
}

// Bytes returns the buffer's memory. It stays valid until Close.
func (b *Buffer) Bytes() []byte { return b.mem }

// Len returns the buffer size in bytes.
func (b *Buffer) Len() int { return len(b.mem) }

// BlockSize returns the block size (the buffer size when it has one block).
func (b *Buffer) BlockSize() int { return b.blockSize }

// ID returns the buffer's random 16-byte id (USRBIO's iov id).
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
	if b.inflight.Load() != 0 {
		return ErrBusy
	}
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if b.inflight.Load() != 0 {
		b.closed.Store(false)
		return ErrBusy
	}
	for _, r := range b.c.liveRings() {
		r.forgetBuffer(b)
	}
	c := b.c
	c.mu.Lock()
	if b.idx < len(c.buffers) && c.buffers[b.idx] == b {
		c.buffers[b.idx] = nil
	}
	c.mu.Unlock()
	return b.free()
}

// free releases the buffer's memory (and, on hf3fs, its registration).
func (b *Buffer) free() error {
	if b.release != nil {
		return b.release()
	}
	return unmapBuffer(b.mapping)
}

// sharedBuffers is implemented by backends whose buffers must be shared
// memory registered with a daemon (hf3fs): mapShared maps n bytes (a page
// multiple) for the buffer with the given id and block size (0: one
// block) and returns a function that unregisters and unmaps them.
type sharedBuffers interface {
	mapShared(id [16]byte, n, blockSize int) ([]byte, func() error, error)
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
