package testutil

import (
	"sync/atomic"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// deviceMemory is where a DeviceBuffer's elements live: behind an
// interface, so that nothing outside this file can take a slice of them.
type deviceMemory[T any] interface {
	load(i int) T
	store(i int, v T)
}

type cells[T any] []T

func (c cells[T]) load(i int) T     { return c[i] }
func (c cells[T]) store(i int, v T) { c[i] = v }

// DeviceBuffer is a tensor.Storage that is not host memory: a stand-in for
// a GPU buffer in tests. Its elements can only be reached through CopyIn and
// CopyOut (which count the transfers) or, for a fake device kernel in a
// test, through At and Set. tensor.HostSlice refuses it with
// tensor.ErrNotHost.
type DeviceBuffer[T any] struct {
	mem       deviceMemory[T]
	n         int
	transfers atomic.Int64
}

// NewDeviceBuffer allocates n zero elements of "device" memory.
func NewDeviceBuffer[T any](n int) *DeviceBuffer[T] {
	return &DeviceBuffer[T]{mem: cells[T](make([]T, n)), n: n}
}

// Upload returns a DeviceBuffer holding a copy of src (one transfer).
func Upload[T any](src []T) *DeviceBuffer[T] {
	b := NewDeviceBuffer[T](len(src))
	if err := b.CopyIn(0, src); err != nil {
		panic(err)
	}
	return b
}

// Len returns the element count.
func (b *DeviceBuffer[T]) Len() int { return b.n }

// Location returns "fake-device:0".
func (b *DeviceBuffer[T]) Location() string { return "fake-device:0" }

// CopyIn copies src into elements [off, off+len(src)), counting one
// transfer.
func (b *DeviceBuffer[T]) CopyIn(off int, src []T) error {
	if err := tensor.CheckRange(b.n, off, len(src)); err != nil {
		return err
	}
	b.transfers.Add(1)
	for i, v := range src {
		b.mem.store(off+i, v)
	}
	return nil
}

// CopyOut copies elements [off, off+len(dst)) into dst, counting one
// transfer.
func (b *DeviceBuffer[T]) CopyOut(dst []T, off int) error {
	if err := tensor.CheckRange(b.n, off, len(dst)); err != nil {
		return err
	}
	b.transfers.Add(1)
	for i := range dst {
		dst[i] = b.mem.load(off + i)
	}
	return nil
}

// Transfers returns how many CopyIn and CopyOut calls the buffer has seen.
func (b *DeviceBuffer[T]) Transfers() int64 { return b.transfers.Load() }

// At returns element i, as a fake device kernel reads its own memory (no
// transfer).
func (b *DeviceBuffer[T]) At(i int) T { return b.mem.load(i) }

// Set stores element i, as a fake device kernel writes its own memory (no
// transfer).
func (b *DeviceBuffer[T]) Set(i int, v T) { b.mem.store(i, v) }
