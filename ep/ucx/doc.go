// Package ucx implements ep.Transport over UCX's UCP layer, the
// communication engine under Open MPI, NCCL's network plug-ins and
// NVIDIA/Mellanox's stacks: one code path for RDMA verbs (RC, DC, UD on
// InfiniBand and RoCE NICs), shared memory (posix, sysv, cma) and TCP,
// chosen by UCX from UCX_TLS and the host's devices.
//
// Binding: libucp.so.0 and libucs.so.0 are loaded at run time with
// purego (no cgo; the module still builds with CGO_ENABLED=0 and needs
// no UCX to build). Without them Dial fails with ErrUnavailable naming
// the library and how to install it (Debian/Ubuntu: apt-get install
// libucx0; FIREFLYER_LIBUCP and FIREFLYER_LIBUCS name other files). The
// parameter structures are passed field_mask-gated, laid out as in UCX
// 1.13's headers (a test with the ucxabi build tag checks them against
// the installed headers). Operations take no callback: every one returns
// a request that is polled with ucp_worker_progress and
// ucp_request_check_status, then freed with ucp_request_free. The one
// callback is the endpoint error handler (made once with purego), which
// only records that an endpoint failed, so that Close forces it closed. Before the
// library loads, UCX_ERROR_SIGNALS is set to empty (unless the user set
// it), so that UCX leaves SIGSEGV and the other signals to the Go runtime.
//
// One rank: one UCP context (features TAG and RMA) and one worker
// (UCS_THREAD_MODE_SERIALIZED; a mutex serializes the calls), an endpoint
// to every peer's worker, and the rank's region allocated and mapped by
// ucp_mem_map (UCP_MEM_MAP_ALLOCATE: with posix or sysv enabled, shared
// memory that the peers on the host map, so that a put is a store; else
// ep.NewRegion's memory registered in place). A progress goroutine drives
// the worker when no call does, spinning while there is work and
// sleeping up to 100 µs when idle.
//
// Bootstrap: the ranks meet over ep/sock (MASTER_ADDR, MASTER_PORT, RANK,
// WORLD_SIZE; sock.Launch starts them on one host), all-gather their
// worker addresses, then at Register their region sizes, addresses and
// packed remote keys. Barrier and AllGather ride on the bootstrap
// connection, which also tells every rank at once when a peer process
// dies.
//
// Put: when UCX maps the peer's region into this process (ucp_rkey_ptr
// succeeds: the peer is on this host and its region is posix or sysv
// shared memory), a Put is a copy from the caller's buffers straight into
// the peer's region, with no UCP call and no staging buffer; its bytes are
// in place when it returns. A Put of 4 MiB or more copies with
// non-temporal stores (internal/kernels' StreamCopy, fenced before it
// returns): the destination's cache lines are not read first, which a
// dispatch's rows to a peer, tens of megabytes, gain from. Where UCX
// does not map the region (TCP, RDMA, cma only), a Put is one ucp_put_nbx
// per buffer, straight from the caller's memory (UCP has no gather list
// for RMA); those puts are not waited for, so the buffers must stay
// unmodified until the next Signal or Barrier.
// Options.NoMappedPuts forces the second way everywhere.
//
// Signal ordering, exactly: Signal(dst, off, delta) first flushes the
// endpoint to dst if a ucp_put_nbx to dst was started since the last
// flush (ucp_ep_flush_nbx, polled to completion: every earlier put to dst
// has completed at dst, its bytes in dst's memory; copies into a mapped
// region are complete already), then sends a 24-byte tagged message
// (ucp_tag_send_nbx) that dst's worker receives and applies with
// ep.Region.Add, which wakes dst's waiters. So a signal is applied after
// every put that the same rank issued to dst before it: the copies'
// stores precede, in this process's program order and across the mutex
// that serializes UCP calls, UCX's own store of the message, which UCX
// orders after everything before it (a store fence on weakly ordered
// CPUs; a socket write for TCP). Barrier flushes every endpoint with
// outstanding ucp_put_nbx before it enters the bootstrap barrier.
//
// Region safety: Put and Signal check the destination's bounds on the
// sender and fail with ep.ErrRange, sending nothing. On the receiving
// side a signal's offset is checked against the region before it is
// applied (a bad one fails the rank with ep.ErrRange). Puts land through
// the remote key, which covers exactly the region: RDMA NICs reject an
// access outside the registered memory, and the shared-memory segment
// that a peer maps (and copies into, for a mapped put) is the region
// alone; but the cma transport
// (process_vm_writev) can write anywhere in a process that the kernel
// lets the peer ptrace, so over cma the peers are trusted as processes of
// one job, as with any shared-memory MPI.
//
// Failures: every wait has the caller's deadline. With
// UCP_ERR_HANDLING_MODE_PEER (Options.ErrMode; the default whenever no
// shared-memory transport is in use) an operation to a dead peer fails
// instead of hanging; independently of UCX, a peer process that dies
// drops its bootstrap connection, which fails every wait of every other
// rank with an error wrapping ep.ErrTransport. What is still sent to a
// peer that closed in an orderly way is dropped, as ep/sock does. A bad
// UCX_TLS fails Dial on every rank with ep.ErrConfig and UCX's reason.
//
// The transport registers with ep.RegisterTransport as "ucx", so
// ep.OpenTransport constructs it by name; `fireflyer info` shows the UCX
// version and the transports UCX would use, and `fireflyer ep bench
// --transport ucx` and `fireflyer demo --transport ucx` run over it.
// docs/ucx.md explains how to run across hosts.
//
// Where it sits: a transport backend of package ep (docs/architecture.md);
// it imports ep, ep/sock and internal/kernels (the streaming copy).
package ucx
