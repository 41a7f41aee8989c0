// Package sock implements ep.Transport over TCP or Unix-domain stream
// sockets, for ranks in separate processes on hosts without RDMA (DeepEP's
// frequent request for non-Mellanox NICs or no NVLink; DeepEP's own
// bootstrap uses MASTER_ADDR/MASTER_PORT through torch.distributed).
//
// Every pair of ranks shares one stream. A Put becomes a frame whose
// payload is gathered from the caller's buffers without copying and written
// with writev (net.Buffers) when the next Signal to that rank flushes the
// stream; a reader goroutine per peer checks each frame's bounds and reads
// the payload straight into the local region, then applies signals in
// stream order, so a signal is applied after every earlier put.
//
// Bootstrap: rank 0 listens at the master address; the other ranks dial it
// and send the address of their own listener; rank 0 answers with the table
// and a session id; then rank j dials every rank i < j. Every connection
// starts with a handshake that checks the protocol version, the group size
// and session, and — when a shared secret is set — proves both sides know
// it (HMAC-SHA256 over both sides' nonces). Addresses are loopback unless
// Options.AllowRemote is set. Every wait has a deadline.
//
// Launch runs a whole group on one host: it starts one process per rank
// (this program again by default, or only ranks 1…R−1 when rank 0 runs in
// the caller), gives each the bootstrap environment, a rendezvous address,
// a fresh shared secret and a deadline (read on the rank side with
// LaunchedOptions), passes each its standard input, collects its standard
// output, exit status and the tail of its standard error, and kills every
// rank still running (stopped ones included) after the first failure or at
// the deadline, reporting them by rank number. `fireflyer demo` and
// `fireflyer ep bench` start their rank processes with it.
//
// The tcp and unix transports are registered with ep.RegisterTransport, so
// ep.OpenTransport constructs them by name and `fireflyer info` lists them.
//
// A peer that dies or sends a malformed frame makes its connection drop
// and every wait on this rank fail with an error wrapping ep.ErrTransport.
//
// Where it sits: a transport backend of package ep (docs/architecture.md); it
// imports ep only.
package sock
