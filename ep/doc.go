// Package ep is expert-parallel MoE communication in Go: DeepEP's dispatch
// and combine, in its normal (high-throughput) and low-latency forms, over a
// small one-sided Transport.
//
// Upstream: deepseek-ai/DeepEP, the V1 deep_ep.Buffer (deep_ep/buffer.py,
// csrc/kernels/{layout,intranode,internode_ll}.cu).
//
// A Buffer per rank mirrors deep_ep.Buffer:
//
//   - Layout (get_dispatch_layout): tokens per rank, per node and per
//     expert, and which ranks each token goes to; topk ids of −1 are skipped.
//   - Dispatch (normal mode): each token goes once to every rank hosting one
//     of its experts, as BF16 or as e4m3 with per-token, per-128-channel
//     float32 or UE8M0 scales. A rank receives rows grouped by source rank in
//     ascending order, in source token order, with local expert ids (−1 for
//     experts elsewhere, whose weights are zeroed), per-expert counts rounded
//     to ExpertAlignment, and a Handle. DispatchCached reuses a Handle.
//   - Combine: the reverse, an unweighted float32 sum per token over the
//     ranks it went to, plus up to two biases, rounded to BF16; it also sums
//     the weights back, which reconstructs them exactly.
//   - LowLatencyDispatch: one message per (token, top-k slot), no per-rank
//     deduplication, optional FP8 quantization on the way (power-of-two or
//     UE8M0 scales), received in the packed [E/R][R·M][H] layout with counts,
//     source info and layout ranges; ReturnRecvHook splits send and receive.
//   - LowLatencyCombine: weighted, Σ_k w·y accumulated in float32, with a
//     zero-copy option (NextCombineBuffer) and a receive hook.
//   - NormalSizeHint and LowLatencySizeHint (upstream's formula) size buffers.
//
// Calls on a Buffer run in issue order like kernels on upstream's
// communication stream; DispatchAsync and CombineAsync return a Pending to
// Wait on (the EventOverlap counterpart), and hooks give the two-phase
// low-latency overlap. Every wait honours its context and Options.Timeout.
// Bad input on any rank (ids out of range, wrong lengths, more tokens than
// the low-latency maximum, ranks that disagree on shapes) makes every rank
// return an error naming the argument, without hanging and without moving
// data; the Buffer stays usable.
//
// Underneath, a Transport gives each rank a registered Region, one-sided
// bounds-checked Puts into a peer's region, Signals ordered after earlier
// puts, a Barrier and an AllGather: the contract of NVSHMEM, NCCL GIN and
// RDMA verbs (writes then an atomic on one queue pair). Instead of DeepEP's
// ring queues, every message has a directly computed address (as DeepEP #39
// suggests): a notify phase exchanges counts and doubles as the entry
// barrier, counters are monotonic so nothing needs cleaning, and the
// low-latency areas are double-buffered with credits.
//
// Transports: ep/inproc (ranks as goroutines sharing memory, the reference)
// and ep/sock (TCP or Unix-domain sockets, one process per rank, bootstrap
// through MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE, optional shared secret)
// and ep/ucx (UCX: RDMA verbs, shared memory or TCP as UCX_TLS selects,
// loaded at run time, bootstrapped over ep/sock; see docs/ucx.md).
// ep/eptest is the conformance suite every transport runs. Transports
// register by name (RegisterTransport) and OpenTransport constructs one from
// a TransportConfig; ep/sock.Launch starts and watches the rank processes
// of a group on one host. The command `fireflyer ep bench` measures each
// of them.
//
// The shortest useful program starts R in-process ranks and runs dispatch
// then combine on each:
//
//	err := inproc.RunBuffers(ctx, 8, ep.Options{NormalBytes: ep.NormalSizeHint(8*n, h, k)},
//		func(ctx context.Context, b *ep.Buffer) error {
//			res, err := b.Dispatch(ctx, x, &topk, ep.DispatchOptions{NumExperts: 256})
//			if err != nil {
//				return err
//			}
//			y := runExperts(res) // weighted, reduced to one row per received token
//			out, err := b.Combine(ctx, y, res.Handle, ep.CombineOptions{})
//			...
//		})
//
// Where it sits: a compute package (docs/architecture.md). It imports tensor
// and the basement only; transports are ep/inproc, ep/sock and ep/ucx, the
// conformance suite ep/eptest.
package ep
