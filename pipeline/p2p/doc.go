// Package p2p carries a pipeline's activations and gradients between
// processes: Transport implements pipeline.Transport[*tensor.Tensor] on any
// ep.Transport, so the executor's program (pipeline.Executor.RunRank) runs
// unchanged across OS processes over the socket transports of ep/sock (TCP
// or Unix-domain, with their bootstrap: MASTER_ADDR, MASTER_PORT, RANK,
// WORLD_SIZE and the shared secret; sock.Launch starts the rank processes),
// or in one process over ep/inproc for tests. Upstream DualPipe does the
// same with NCCL's batch_isend_irecv (deepseek-ai/DualPipe dualpipe/comm.py).
//
// Two paths carry the messages. On an ep transport that is also an
// ep.Messenger (ep/sock), each message is one two-sided message: a small
// header (tag, dtype, shape, byte count) and the tensor's bytes leave in
// one writev straight from the tensor, and the transport's reader reads
// the payload straight into the buffer of the tensor that Recv will return
// (a buffer handed back with Transport.Recycle, or a new one that is not
// zeroed first): the bytes cross memory once on each side, as in a raw
// socket stream. On any other ep transport (ep/inproc, one-sided
// transports) each rank's registered region holds one ring buffer per
// sender: the header and payload are streamed into the receiver's ring
// with ep puts and a signal per piece, and the receiver hands the space
// back with a credit signal; a message that fits in the ring is copied out
// of it once, a larger one streams through it in pieces.
//
// On both paths a caller done with a received tensor can hand it back with
// Transport.Recycle, and a later message of the same size lands in its
// buffer: a training loop should, to stay near the raw stream's rate (a
// fresh buffer per message costs its allocation and page faults). A reader
// goroutine per peer (the ep transport's, or this package's on the ring
// path) drains the peer's stream into per-tag queues as messages arrive,
// so Send never waits for the matching Recv (on the ring path only,
// briefly, for ring space) and messages from one peer are matched by tag in
// any order. Every Recv has a deadline (Options.Timeout or the context's).
// A peer that dies makes the ep transport fail, and every Recv still
// waiting on this rank returns an error wrapping ep.ErrTransport; on the
// message path a peer that closes its transport makes waiting receives
// from it fail at once with ep.ErrClosed (what it sent before stays
// receivable).
//
//	tr, err := sock.Dial(ctx, opts) // this rank's socket transport
//	if err != nil { ... }
//	net, err := p2p.New(ctx, tr, p2p.Options{}) // collective
//	if err != nil { ... }
//	defer net.Close()
//	losses, err := ex.RunRank(ctx, rank, stages, net)
//
// Where it sits: a transport of package pipeline (docs/architecture.md); it
// imports pipeline, ep (the transport interface) and tensor.
package p2p
