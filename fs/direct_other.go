//go:build !linux

package fs

func isDirect(flag int) bool         { return false }
func dioAlign(fd int) (mem, off int) { return 0, 0 }

// ODirect is the OpenFile flag for direct I/O that bypasses the page cache
// (unix.O_DIRECT on Linux; 0 where the platform has none).
const ODirect = 0
