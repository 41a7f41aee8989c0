//go:build unix

package mmap

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Map maps n bytes (n > 0; the mapping is rounded up to the page size) of
// zeroed anonymous memory per o. The result has length and capacity n; free
// it with Unmap (not unix.Munmap, which only takes whole unix.Mmap
// results). Errors: the mmap errno; with o.Node >= 0, ErrNoNode for a node
// the machine lacks, ErrUnavailable off Linux, or the mbind errno.
func Map(n int, o Opts) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("mmap: size %d must be > 0", n)
	}
	if o.Node >= 0 {
		if err := checkNode(o.Node); err != nil {
			return nil, err
		}
	}
	page := unix.Getpagesize()
	mapped := (n + page - 1) / page * page
	extra := 0
	if o.Huge && mapped >= HugePage {
		extra = HugePage
	}
	flags := unix.MAP_PRIVATE | unix.MAP_ANON
	if o.NoReserve {
		flags |= mapNoReserve
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(mapped+extra), unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, err
	}
	raw := unsafe.Slice((*byte)(p), mapped+extra)
	mem := raw
	if extra > 0 {
		lead := (HugePage - int(uintptr(p)%HugePage)) % HugePage
		if lead > 0 {
			_ = Unmap(raw[:lead:lead])
		}
		if tail := extra - lead; tail > 0 {
			_ = Unmap(raw[lead+mapped:])
		}
		mem = raw[lead : lead+mapped : lead+mapped]
		adviseHuge(mem)
	}
	if o.Node >= 0 {
		if err := bind(mem, o.Node); err != nil {
			_ = Unmap(mem)
			return nil, err
		}
	}
	return mem[:n:n], nil
}

// Unmap releases memory from Map (any page-aligned sub-range of it, with
// the length Map returned or the page-rounded one).
func Unmap(b []byte) error {
	if cap(b) == 0 {
		return nil
	}
	b = b[:cap(b)]
	page := unix.Getpagesize()
	n := (len(b) + page - 1) / page * page
	return unix.MunmapPtr(unsafe.Pointer(&b[0]), uintptr(n))
}

// MapFile maps the first size bytes of f read-only and shared (size > 0):
// the page cache is the memory, nothing is copied. Free it with Unmap.
func MapFile(f *os.File, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("mmap: file size %d must be > 0", size)
	}
	p, err := unix.MmapPtr(int(f.Fd()), 0, nil, uintptr(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), size), nil
}
