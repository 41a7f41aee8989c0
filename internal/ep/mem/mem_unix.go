//go:build unix

package mem

import "golang.org/x/sys/unix"

// Alloc returns n zeroed bytes. Blocks of MmapThreshold bytes or more come
// from an anonymous private mapping (page-aligned, backed only where
// touched); smaller ones, and any whose mmap fails, from the Go heap (where
// the race detector sees them).
func Alloc(n int) *Block {
	if n < MmapThreshold {
		return &Block{Bytes: make([]byte, max(n, 0))}
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		return &Block{Bytes: make([]byte, n)}
	}
	return &Block{Bytes: b, free: func() { _ = unix.Munmap(b) }}
}
