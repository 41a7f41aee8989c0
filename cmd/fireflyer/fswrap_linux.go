//go:build linux

package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// callerMemory maps n bytes the way a program that owns its memory would
// hand it to fs bench --wrap: a MAP_SHARED mapping of a new /dev/shm file
// (which every backend can register, hf3fs included). release unmaps it
// and removes the file.
func callerMemory(n int) ([]byte, func(), error) {
	var r [8]byte
	_, _ = rand.Read(r[:])
	path := "/dev/shm/fireflyer-bench-" + hex.EncodeToString(r[:])
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(n)); err != nil {
		os.Remove(path)
		return nil, nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, errors.Join(err, os.Remove(path))
	}
	return mem, func() { unix.Munmap(mem); os.Remove(path) }, nil
}
