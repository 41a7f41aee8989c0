//go:build !linux

package main

import "github.com/fireflyer-go/fireflyer/internal/mmap"

// callerMemory maps n bytes of anonymous memory for fs bench --wrap (no
// /dev/shm here; hf3fs is Linux-only anyway). It fails where the
// platform has no anonymous mappings.
func callerMemory(n int) ([]byte, func(), error) {
	mem, err := mmap.Map(n, mmap.Opts{Node: -1})
	if err != nil {
		return nil, nil, err
	}
	return mem, func() { mmap.Unmap(mem) }, nil
}
