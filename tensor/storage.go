package tensor

import "fmt"

// Storage is where an operand's elements live: host memory (Host), or a
// device buffer of a GPU backend (no package of this module provides one
// yet: package cuda does not implement Storage). Every operand field that holds
// elements (FP8Matrix data and scales, gemm's BF16 operands and output,
// mla's paged cache) is a Storage, so a backend that keeps data on a device
// can receive its own buffers between calls without copies. Validation needs
// only Len; a backend that computes on the CPU asks for the host slice with
// HostSlice, once per call, and returns ErrNotHost (wrapped) for storage it
// cannot address.
type Storage[T any] interface {
	// Len returns the number of elements of type T the storage holds.
	Len() int
	// Location names where the elements live: "host" for host memory,
	// e.g. "cuda:0" for a device.
	Location() string
	// CopyIn copies src into elements [off, off+len(src)); CopyOut copies
	// elements [off, off+len(dst)) into dst. They are explicit transfers
	// for callers that stage data (uploads, reading a result back);
	// backends never call them behind the caller's back. Errors: ErrShape
	// (wrapped) for a range outside [0, Len()).
	CopyIn(off int, src []T) error
	CopyOut(dst []T, off int) error
}

// HostStorage is Storage the CPU addresses in place: Host returns the
// elements themselves (no copy).
type HostStorage[T any] interface {
	Storage[T]
	Host() []T
}

// Host is host memory: a plain slice, viewed as Storage. Convert with
// Host[T](s) or HostOf(s); the conversion copies nothing.
type Host[T any] []T

// HostOf returns s as host Storage (no copy).
func HostOf[T any](s []T) Host[T] { return Host[T](s) }

// Len returns len(h).
func (h Host[T]) Len() int { return len(h) }

// Location returns "host".
func (Host[T]) Location() string { return "host" }

// Host returns the slice itself.
func (h Host[T]) Host() []T { return h }

// CopyIn copies src into h[off:].
func (h Host[T]) CopyIn(off int, src []T) error {
	if err := CheckRange(len(h), off, len(src)); err != nil {
		return err
	}
	copy(h[off:], src)
	return nil
}

// CopyOut copies h[off:off+len(dst)] into dst.
func (h Host[T]) CopyOut(dst []T, off int) error {
	if err := CheckRange(len(h), off, len(dst)); err != nil {
		return err
	}
	copy(dst, h[off:])
	return nil
}

// CheckRange returns an error wrapping ErrShape unless [off, off+n) lies
// within [0, size): the bounds rule of Storage.CopyIn and CopyOut, for
// implementations to share.
func CheckRange(size, off, n int) error {
	if off < 0 || n < 0 || off > size || n > size-off {
		return fmt.Errorf("%w: range [%d, %d+%d) outside storage of %d elements", ErrShape, off, off, n, size)
	}
	return nil
}

// HostSlice returns the host elements of s (no copy): nil for a nil s, the
// slice of a Host or other HostStorage. For storage the CPU cannot address
// it returns an error wrapping ErrNotHost that names the location.
func HostSlice[T any](s Storage[T]) ([]T, error) {
	switch v := s.(type) {
	case nil:
		return nil, nil
	case Host[T]:
		return v, nil
	case HostStorage[T]:
		return v.Host(), nil
	}
	return nil, fmt.Errorf("%w: %T storage on %s", ErrNotHost, s, s.Location())
}

// StorageLen returns s.Len(), or 0 for a nil s.
func StorageLen[T any](s Storage[T]) int {
	if s == nil {
		return 0
	}
	return s.Len()
}
