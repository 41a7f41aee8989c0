//go:build unix && !linux

package mmap

import "fmt"

const mapNoReserve = 0

func adviseHuge(b []byte) {}

func checkNode(node int) error {
	return fmt.Errorf("%w: NUMA binding (node %d) is Linux-only", ErrUnavailable, node)
}

func bind(b []byte, node int) error { return checkNode(node) }
