//go:build linux

package mmap

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

const mapNoReserve = unix.MAP_NORESERVE

// mpolBind is MPOL_BIND (include/uapi/linux/mempolicy.h).
const mpolBind = 2

func adviseHuge(b []byte) { _ = unix.Madvise(b, unix.MADV_HUGEPAGE) }

// checkNode reports ErrNoNode unless /sys/devices/system/node/node<n>
// exists.
func checkNode(node int) error {
	if node > 1023 {
		return fmt.Errorf("%w: node %d (at most 1023)", ErrNoNode, node)
	}
	if _, err := os.Stat("/sys/devices/system/node/node" + strconv.Itoa(node)); err != nil {
		return fmt.Errorf("%w: node %d (no /sys/devices/system/node/node%d)", ErrNoNode, node, node)
	}
	return nil
}

// bind applies MPOL_BIND to node on b with mbind(2); b must be untouched
// so every page is allocated on the node at first touch.
func bind(b []byte, node int) error {
	var mask [1024 / 64]uint64
	mask[node/64] |= 1 << (node % 64)
	_, _, errno := unix.Syscall6(unix.SYS_MBIND, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		mpolBind, uintptr(unsafe.Pointer(&mask[0])), uintptr(len(mask)*64+1), 0)
	if errno != 0 {
		return fmt.Errorf("mmap: mbind node %d: %w", node, errno)
	}
	return nil
}
