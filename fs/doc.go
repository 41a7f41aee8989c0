// Package fs is a zero-copy file client modelled on 3FS USRBIO: registered
// buffers (Iov), registered files, and I/O rings (Ior) driven by Prep,
// Submit and Wait, over interchangeable backends.
//
// Upstream: deepseek-ai/3FS, src/lib/api/hf3fs_usrbio.h and UsrbIo.cc
// (hf3fs_iovcreate, hf3fs_iovwrap, hf3fs_iovopen, hf3fs_reg_fd,
// hf3fs_iorcreate4, hf3fs_prep_io, hf3fs_submit_ios, hf3fs_wait_for_ios,
// hf3fs_punchhole, hf3fs_hardlink).
//
// # Concepts
//
//   - Client: opened on a mount point or directory with Open; relative file
//     names resolve under it. One backend moves the data.
//   - Buffer (USRBIO Iov): page-aligned memory mapped outside the Go heap,
//     registered with the backend, split into blocks no I/O may cross.
//     A Region is a byte range of one Buffer. WrapBuffer registers memory
//     the caller already owns instead (iovwrap); a Buffer made with
//     BufferOpts.Shared (every Buffer on hf3fs) can be attached by its ID
//     from another process with OpenBuffer (iovopen), its /dev/shm file
//     0600 unless BufferOpts.Mode widens it.
//   - File (USRBIO reg_fd): a registered file, opened by the Client
//     (OpenFile) or duplicated from an *os.File (Register).
//     File.PunchHole deallocates a range (the size stays), Client.Hardlink
//     gives a file a second name.
//   - Ring (USRBIO Ior): a fixed number of slots for reads or for writes.
//     Prep queues a Req (file, offset, region, numeric tag), Submit
//     dispatches per the Batch mode (ASAP, Exact n, AtMost n with a
//     timeout), Wait(ctx, out, min) returns Completions (bytes or errno, and
//     the tag) in completion order.
//
// # Backends
//
// WithBackend picks one by name; "auto" (the default) takes hf3fs when the
// root is on a 3FS mount, else uring when the kernel allows io_uring, else
// posix. Each is an implementation of the exported Backend interface
// (with BackendFile and Engine), registered by name: NewBackend constructs
// one, Backends lists them with their availability here, and
// WithBackendValue opens a Client on any Backend value — a built-in one,
// a wrapper such as fs/errorfs (fault injection: EIO, ENOSPC, short reads
// and writes, latency, reordering, by rule), or a third party's, which
// fs/fstest.RunBackend certifies:
//
//   - "hf3fs": the native 3FS USRBIO protocol in pure Go, no cgo and no
//     libhf3fs (internal/hf3fs). Buffers are /dev/shm files (mode 0600
//     unless HF3FSOpts.ShmMode says otherwise) registered with the FUSE
//     daemon by symlinks under <mount>/3fs-virt/iovs, whose names (keys)
//     carry the uuid, block size, direction, io_depth, priority, .t and the
//     flags in binary. Each Ring is a shared-memory SQ/CQ in 3FS's layout;
//     Submit posts the daemon's per-priority semaphore and Wait sleeps on
//     the ring's own, both glibc sem_t words driven by futexes. Files are
//     addressed by the inode id statx reports, after the magic ioctl check.
//     All symlinks and the kept-open iovs directory belong to one locked OS
//     thread, so the daemon's cleanup at releasedir finds them; Close
//     unlinks every key and shm file. The mount is found in
//     /proc/self/mountinfo (fstype fuse.hf3fs) or given as
//     HF3FSOpts.MountPoint; the tests run it end to end against a fake
//     daemon (FakeDaemon in the package's tests). Linux only.
//   - "uring": io_uring through raw system calls (internal/uring); each
//     Ring is an io_uring instance with the Client's Buffers and Files
//     registered (READ_FIXED/WRITE_FIXED on fixed files) and one
//     io_uring_enter per dispatched batch. If the kernel refuses io_uring
//     the Client falls back to posix and Features().Note says why. Linux
//     only.
//   - "posix": a worker pool running pread/pwrite, the portable reference
//     (any Unix; off Unix, Open fails with ErrUnsupported).
//   - "mem": an in-memory sparse file store (MemStore, with an optional
//     capacity that makes writes fail with ENOSPC); the oracle the
//     conformance suite in fs/fstest compares the others with. It works
//     on every platform.
//
// Buffers come from anonymous memory (internal/mmap), 2 MiB-aligned with
// transparent huge pages from 2 MiB up, or from a /dev/shm file when
// shared; WithNUMA binds them, and wrapped memory, to a NUMA node (mbind,
// MPOL_BIND, before the first touch; ErrInvalid for a node the machine
// lacks).
//
// # Semantics, and where they differ from USRBIO
//
//   - A read at or past end of file completes with a short count (0 past
//     EOF); holes read as zeros unless the ring has ForbidReadHoles (then
//     ENODATA, where Features().ForbidReadHoles).
//   - Errors have one convention: sentinel values that match the USRBIO
//     errno under errors.Is (ErrRingFull is EAGAIN, ErrUnregistered EBADF,
//     ErrWrongDirection EACCES, ErrRange EINVAL); per-I/O errors are
//     syscall.Errno values in Completion.Err.
//   - Priority and Flags can be set together; tags are numbers, not
//     pointers; deadlines come from the context.
//   - Wait fails fast with ErrWouldStall when min exceeds what the I/O
//     already dispatched (or pending in an AtMost batch) can deliver, where
//     USRBIO's io_depth > 0 would hang forever.
//   - Prep, Submit and Wait do not allocate in steady state.
//   - On hf3fs, File.Sync is fsync through FUSE, which is what makes a new
//     file length visible to other clients (3FS reports lengths lazily).
//   - O_DIRECT files (ODirect in OpenFile's flag) check the alignment
//     statx reports (ErrAlignment).
//   - A daemon that dies with I/O in flight (hf3fs) is noticed within
//     about 50 ms: what it completed is delivered once, the rest completes
//     once with ENOTCONN, and Close returns. RingOpts.Timeout bounds Wait
//     and Close against one that hangs (ErrTimeout); upstream waits
//     forever.
//
// # Shortest program
//
//	c, _ := fs.Open(ctx, "/data")
//	defer c.Close()
//	f, _ := c.OpenFile("shard-0", os.O_RDONLY, 0)
//	buf, _ := c.NewBuffer(1<<20, fs.BufferOpts{})
//	ring, _ := c.NewRing(fs.RingOpts{Entries: 64, Op: fs.Read})
//	reg, _ := buf.Region(0, 1<<20)
//	ring.Prep(fs.Req{File: f, Off: 0, Buf: reg, Tag: 1})
//	ring.Submit()
//	out := make([]fs.Completion, 1)
//	ring.Wait(ctx, out, 1) // out[0].N bytes are in reg.Bytes()
//
// File also implements io.ReaderAt and io.WriterAt (through a pooled ring
// and a bounce buffer), and Client.ReadBatch/WriteBatch run a slice of
// requests to completion.
//
// Where it sits: a compute package (docs/architecture.md): the I/O layer. It
// imports the basement only (io_uring and hf3fs system calls); formats such
// as fs/safetensors sit on top of it, its conformance suite is fs/fstest.
package fs
