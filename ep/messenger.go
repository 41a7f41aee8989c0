package ep

import "context"

// MaxMsgMeta is the largest meta (per-message header) a Messenger carries.
const MaxMsgMeta = 4096

// Messenger is an optional interface of a Transport that also carries
// whole two-sided messages, each landing straight in a buffer the receiver
// chooses when the message's header arrives: the receive path of NCCL's
// send/recv (which upstream DualPipe uses for activations) rather than a
// put into a fixed region. A pipeline transport (pipeline/p2p) uses it,
// when the ep transport has it, to move an activation from the socket into
// the tensor that Recv returns with no copy in between.
//
// Messages to one destination arrive in the order they were sent, in the
// same stream as Puts and Signals to that destination. ep/sock implements
// it; ep/inproc and transports without a message path do not.
type Messenger interface {
	// SendMsg sends one message to rank dst: meta (at most MaxMsgMeta
	// bytes, handed to the receiver's MsgHandler as is) and the
	// concatenation of payload (at most 1<<32−1 bytes in all). It returns
	// once the bytes are written to the transport (for a socket: in the
	// kernel's send buffer), so the caller may then reuse payload. Errors
	// wrap ErrRange (dst outside the group, sizes over the bounds),
	// ErrConfig (no handler installed at this rank: OnMsg first),
	// ErrTransport or ErrClosed.
	SendMsg(ctx context.Context, dst int, meta []byte, payload ...[]byte) error
	// OnMsg installs the handler of the messages this rank receives. It
	// must be called once, before any peer sends this rank a message: a
	// collective such as Barrier after OnMsg on every rank orders the two.
	// A message that arrives with no handler installed breaks the
	// connection with a protocol error.
	OnMsg(h MsgHandler) error
}

// MsgHandler receives a Messenger's messages. Its methods are called from
// the transport's reader goroutines: for one sender in the order of the
// stream, for different senders concurrently.
type MsgHandler interface {
	// MsgBuffer returns the buffer (length exactly n) into which the n
	// payload bytes of the message with header meta from rank from are
	// read. meta is valid only during the call. An error (a header that
	// does not parse, a size it refuses) breaks the connection to from and
	// fails the transport with it.
	MsgBuffer(from int, meta []byte, n int) ([]byte, error)
	// Msg is called once the payload is in buf (the buffer MsgBuffer
	// returned); meta is valid only during the call.
	Msg(from int, meta, buf []byte)
	// MsgEnd is called once when the stream from rank from ends: err is nil
	// when the peer closed in an orderly way, else why the stream broke.
	MsgEnd(from int, err error)
}
