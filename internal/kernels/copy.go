package kernels

import "unsafe"

// StreamCopy copies min(len(dst), len(src)) bytes from src to dst and
// returns that count, as copy does, for buffers that do not overlap (when
// they do it is exactly copy). At the AVX2 and AVX512 levels the part of
// dst that starts 32-byte aligned, in whole 128-byte blocks, is written
// with non-temporal stores (AVX2 assembly at both levels): the bytes go
// to memory without the destination's cache lines being read first,
// which makes a copy much larger than the cache, whose destination the
// copying core will not read soon, faster (ep's shared-memory puts, where
// another process reads the bytes). The stores are fenced before it
// returns, so they are ordered before every later store, as copy's are.
// The head and tail, and every other level, use copy.
func (ks Set) StreamCopy(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n == 0 {
		return 0
	}
	dst, src = dst[:n], src[:n]
	if (ks.level != AVX2 && ks.level != AVX512) || n < 256 || overlap(dst, src) {
		return copy(dst, src)
	}
	head := int(-uintptr(unsafe.Pointer(&dst[0])) & 31)
	copy(dst[:head], src[:head])
	body := (n - head) &^ 127
	if body > 0 {
		streamCopyAVX2(&dst[head], &src[head], body)
	}
	copy(dst[head+body:], src[head+body:])
	return n
}

// overlap reports whether a and b (both non-empty) share a byte.
func overlap(a, b []byte) bool {
	pa, pb := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
