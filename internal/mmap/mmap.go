// Package mmap is the one anonymous-memory allocator of the module: the
// registered I/O buffers of package fs and the large, mostly untouched
// buffers of package ep both come from here.
//
// Memory from an anonymous private mapping lies outside the Go heap, is
// page-aligned and zero, and is backed by RAM only where it is touched, so
// a buffer sized for the worst case costs nothing until it is written (Go
// heap memory that is reused gets zeroed, which touches all of it).
//
// Map is the primitive (with huge-page alignment and NUMA binding); Alloc
// is the convenience ep uses, which keeps small blocks on the Go heap.
package mmap

import "errors"

// ErrUnavailable is returned (wrapped) where the platform cannot do what
// was asked: anonymous mappings off Unix, NUMA binding off Linux.
var ErrUnavailable = errors.New("mmap: not available on this platform")

// ErrNoNode is returned (wrapped) by Map for a NUMA node that does not
// exist on this machine (no /sys/devices/system/node/nodeN).
var ErrNoNode = errors.New("mmap: no such NUMA node")

// HugePage is the transparent huge page size: mappings of at least this
// size with Opts.Huge are aligned to it and advised MADV_HUGEPAGE.
const HugePage = 2 << 20

// Opts configures Map.
type Opts struct {
	// Huge aligns mappings of HugePage bytes or more to HugePage and asks
	// for transparent huge pages (best effort): fewer, larger physically
	// contiguous segments per I/O.
	Huge bool
	// NoReserve maps without reserving swap (MAP_NORESERVE): for buffers
	// sized for a worst case that is mostly never touched.
	NoReserve bool
	// Node, when >= 0, binds the memory to that NUMA node (mbind with
	// MPOL_BIND before the first touch, so every page is allocated there).
	// -1 leaves placement to the kernel. Linux only.
	Node int
}

// Block is an allocation from Alloc; Bytes is valid until Free.
type Block struct {
	Bytes []byte
	free  func()
}

// Free releases the block; Bytes must not be used afterwards. Free is
// idempotent.
func (b *Block) Free() {
	if b != nil && b.free != nil {
		b.free()
		b.free = nil
		b.Bytes = nil
	}
}

// Threshold is the size from which Alloc maps memory instead of using the
// Go heap.
const Threshold = 16 << 20

// Alloc returns n zeroed bytes. Blocks of Threshold bytes or more come from
// Map with NoReserve (page-aligned, backed only where touched); smaller
// ones, any whose mapping fails, and every block where mappings are
// unavailable come from the Go heap (where the race detector sees them).
func Alloc(n int) *Block {
	if n < Threshold {
		return &Block{Bytes: make([]byte, max(n, 0))}
	}
	b, err := Map(n, Opts{NoReserve: true, Node: -1})
	if err != nil {
		return &Block{Bytes: make([]byte, n)}
	}
	return &Block{Bytes: b, free: func() { _ = Unmap(b) }}
}

// Bind binds b, memory mapped by the caller (a shared mapping, say) and
// not touched yet, to NUMA node (mbind MPOL_BIND; pages already touched
// stay where they are). Errors: ErrNoNode for a node the machine lacks,
// ErrUnavailable off Linux, or the mbind errno.
func Bind(b []byte, node int) error {
	if len(b) == 0 {
		return nil
	}
	if err := checkNode(node); err != nil {
		return err
	}
	return bind(b, node)
}
