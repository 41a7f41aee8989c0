// Package p2p carries a pipeline's activations and gradients between
// processes: Transport implements pipeline.Transport[*tensor.Tensor] on any
// ep.Transport, so the executor's program (pipeline.Executor.RunRank) runs
// unchanged across OS processes over the socket transports of ep/sock (TCP
// or Unix-domain, with their bootstrap: MASTER_ADDR, MASTER_PORT, RANK,
// WORLD_SIZE and the shared secret; sock.Launch starts the rank processes),
// or in one process over ep/inproc for tests. Upstream DualPipe does the
// same with NCCL's batch_isend_irecv (deepseek-ai/DualPipe dualpipe/comm.py).
//
// Each rank's registered region holds one ring buffer per sender. A message
// is a small header (tag, dtype, shape, byte count) followed by the tensor's
// bytes, streamed into the receiver's ring with ep puts and a signal per
// piece (the header travels in the same piece as the payload's start); the
// receiver hands the space back with a credit signal. A message that fits
// in the ring is copied out of it once, into a new buffer that is not
// zeroed first; a larger one streams through the ring in pieces. A caller
// done with a received tensor can hand it back with Transport.Recycle, and
// a later message of the same size lands in its buffer. A reader
// goroutine per peer drains its ring into per-tag queues as messages
// arrive, so Send never waits for the matching Recv (only, briefly, for
// ring space) and messages from one peer are matched by tag in any order.
// Every Recv has a deadline (Options.Timeout or the context's). A peer that
// dies makes the ep transport fail, and every Recv still waiting on this
// rank returns an error wrapping ep.ErrTransport.
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
