// Package internal is Fireflyer's basement: what the public packages share
// and no user should import (docs/architecture.md). It holds the one
// backend registry (registry), the SIMD kernels and their CPU-feature
// selection, the parallel-for pool, CPU and OS facts (platform), the mmap
// allocator, the io_uring and hf3fs system-call layers (uring, hf3fs), the
// benchmark anchors (anchor), the metrics and generators checks share
// (testutil) and the tests' goroutine-leak check (testutil/leaktest).
// Nothing under it imports a public package other than tensor.
package internal
