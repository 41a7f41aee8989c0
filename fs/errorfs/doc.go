// Package errorfs wraps any fs.Backend and injects faults into its I/O by
// rule: errors (EIO, ENOSPC, any errno), short reads and writes, latency
// and reordering, in the spirit of pebble's errorfs.Wrap. It is how the
// failure paths of code built on package fs (a checkpoint writer that must
// clean up after ENOSPC, a reader that must retry short reads) are tested
// against a real backend.
//
//	be, _ := fs.NewBackend("posix", fs.BackendOpts{})
//	efs := errorfs.Wrap(be, errorfs.Options{Rules: []errorfs.Rule{
//		{Op: errorfs.Writes, Path: "*.tmp", Inject: errorfs.Injection{Err: syscall.ENOSPC}},
//	}})
//	c, _ := fs.Open(ctx, dir, fs.WithBackendValue(efs))
//
// Injection.Hang holds I/O until Backend.Kill, which simulates the death of
// the server (a 3FS daemon): everything not yet delivered completes once
// with the errno given, later submissions fail. Together they test ring
// timeouts and Close with I/O in flight on any backend.
//
// Faults apply to ring I/O (and so to everything built on it: File.ReadAt
// and WriteAt, ReadBatch, WriteBatch); opening files, mapping, wrapping
// and opening buffers, punching holes and hard links pass through
// unchanged.
package errorfs
