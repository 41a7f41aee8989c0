// Package fs is a zero-copy file client modelled on 3FS USRBIO: registered buffers (Iov), I/O rings (Ior) with prep/submit/wait, and posix, io_uring, native 3FS and in-memory backends.
//
// Upstream: deepseek-ai/3FS, src/lib/api/hf3fs_usrbio.h.
//
// This package is not built yet; this file says what it will hold.
package fs
