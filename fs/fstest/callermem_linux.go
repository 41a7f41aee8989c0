//go:build linux

package fstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// CallerMemory returns n bytes of memory the test owns, as a caller of
// fs.Client.WrapBuffer would: a MAP_SHARED mapping of a fresh /dev/shm
// file from offset 0 (the kind every backend, hf3fs included, can
// register), page-aligned. It is unmapped and removed at the end of the
// test; off Linux the test is skipped.
func CallerMemory(t testing.TB, n int) []byte {
	t.Helper()
	var r [8]byte
	_, _ = rand.Read(r[:])
	path := "/dev/shm/fstest-caller-" + hex.EncodeToString(r[:])
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(n)); err != nil {
		os.Remove(path)
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(path)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Munmap(mem)
		os.Remove(path)
	})
	return mem
}
