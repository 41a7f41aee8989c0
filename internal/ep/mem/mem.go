// Package mem allocates the large, mostly untouched buffers of package ep
// outside the Go heap. Buffers sized for the worst case (N·R rows, or
// [E/R][R·M][H] packed layouts) are mostly never written; memory from mmap
// is only backed by RAM where it is touched, whereas Go heap memory that is
// reused gets zeroed, which touches all of it.
package mem

// Block is an allocation; Bytes is valid until Free.
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

// MmapThreshold is the size from which Alloc maps memory instead of using
// the Go heap.
const MmapThreshold = 16 << 20
