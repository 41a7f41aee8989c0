// Package hf3fs holds the wire-level pieces of 3FS's USRBIO shared-memory
// protocol, written in pure Go from the behaviour of deepseek-ai/3FS
// (src/lib/api/UsrbIo.cc, src/fuse/IoRing.h, src/fuse/IovTable.cc): the
// symlink key grammar under <mount>/3fs-virt/iovs, the ring layout, a
// glibc-compatible process-shared semaphore on futexes, and mount
// detection from /proc/self/mountinfo. The fs package's "hf3fs" backend
// and its test daemon both use it.
//
// Where it sits: the basement (docs/architecture.md); only fs imports it.
package hf3fs
