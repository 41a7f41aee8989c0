//go:build !unix

package mem

// Alloc returns n zeroed bytes from the Go heap.
func Alloc(n int) *Block { return &Block{Bytes: make([]byte, max(n, 0))} }
