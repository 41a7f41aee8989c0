//go:build !linux

package fstest

import "testing"

// CallerMemory skips the test off Linux (the shared mapping it returns
// there needs /dev/shm).
func CallerMemory(t testing.TB, n int) []byte {
	t.Helper()
	t.Skip("caller memory from /dev/shm needs Linux")
	return nil
}
