//go:build !unix

package mmap

import (
	"fmt"
	"os"
)

// Map returns ErrUnavailable: anonymous mappings are implemented on Unix
// only.
func Map(n int, o Opts) ([]byte, error) {
	return nil, fmt.Errorf("%w: anonymous mappings are Unix-only", ErrUnavailable)
}

// Unmap releases memory from Map; there is none off Unix.
func Unmap(b []byte) error { return nil }

// MapFile returns ErrUnavailable: file mappings are implemented on Unix
// only.
func MapFile(f *os.File, size int) ([]byte, error) {
	return nil, fmt.Errorf("%w: file mappings are Unix-only", ErrUnavailable)
}

func checkNode(node int) error {
	return fmt.Errorf("%w: NUMA binding (node %d) is Linux-only", ErrUnavailable, node)
}

func bind(b []byte, node int) error { return checkNode(node) }
