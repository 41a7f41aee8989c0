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
	if o.BlockSize < 0 || (o.BlockSize > 0 && size%o.BlockSize != 0) {
		return nil, fmt.Errorf("%w: block size %d must be >= 0 and divide buffer size %d", ErrInvalid, o.BlockSize, size)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as the key shows it
	id[8] = id[8]&0x3f | 0x80
	mem, release, err := c.be.MapBuffer(BufferSpec{ID: id, Size: mapped, BlockSize: o.BlockSize, Node: c.numa})
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
	if b.blockSize == 0 {
		b.blockSize = size
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

// mapLocal maps the memory of a local backend's Buffer (mem, posix,
// uring): anonymous memory from internal/mmap, 2 MiB-aligned and advised
// MADV_HUGEPAGE from 2 MiB up (fewer, larger physically contiguous segments
// per I/O: a 1 MiB O_DIRECT read in 4 KiB pages needs 256 segments, more
// than many block devices take in one request), bound to s.Node when it is
// >= 0.
func mapLocal(s BufferSpec) ([]byte, func() error, error) {
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
