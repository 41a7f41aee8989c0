package ep

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them,
// so callers test with errors.Is.
var (
	// ErrShape reports an argument whose length or dimensions are wrong, or
	// shapes that the ranks disagree on.
	ErrShape = errors.New("ep: bad shape")
	// ErrRange reports a value out of its valid range (an expert id outside
	// [−1, numExperts), more tokens than the low-latency maximum, an offset
	// outside a registered region).
	ErrRange = errors.New("ep: value out of range")
	// ErrConfig reports invalid or disagreeing Buffer options.
	ErrConfig = errors.New("ep: bad configuration")
	// ErrCapacity reports a call that needs more of the registered region
	// than the Buffer was created with; the message names the bytes needed.
	ErrCapacity = errors.New("ep: buffer too small")
	// ErrHandle reports a handle that does not belong to this Buffer or does
	// not match the call.
	ErrHandle = errors.New("ep: bad handle")
	// ErrBroken reports a Buffer left unusable by an earlier failure in the
	// middle of a collective (a timeout or a transport error).
	ErrBroken = errors.New("ep: buffer broken by an earlier failure")
	// ErrClosed reports use of a closed Buffer, Region or Transport.
	ErrClosed = errors.New("ep: closed")
	// ErrTransport reports a transport failure (a peer that died, a
	// connection that broke, a malformed frame).
	ErrTransport = errors.New("ep: transport failure")
)

// error codes carried between ranks so that a peer's failure can be
// reported with the same sentinel on every rank.
const (
	codeOK uint32 = iota
	codeShape
	codeRange
	codeConfig
	codeCapacity
	codeHandle
	codeOther
)

func errCode(err error) uint32 {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, ErrShape):
		return codeShape
	case errors.Is(err, ErrRange):
		return codeRange
	case errors.Is(err, ErrConfig):
		return codeConfig
	case errors.Is(err, ErrCapacity):
		return codeCapacity
	case errors.Is(err, ErrHandle):
		return codeHandle
	}
	return codeOther
}

func codeErr(c uint32) error {
	switch c {
	case codeShape:
		return ErrShape
	case codeRange:
		return ErrRange
	case codeConfig:
		return ErrConfig
	case codeCapacity:
		return ErrCapacity
	case codeHandle:
		return ErrHandle
	}
	return ErrTransport
}

// PeerError is returned on every rank when another rank's arguments were
// rejected (or the ranks' arguments disagree): Rank is the rank whose input
// failed, Msg its error message. Unwrap yields the same sentinel (ErrShape,
// ErrRange, …) as the failing rank's own error.
type PeerError struct {
	Rank int
	Msg  string
	err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("ep: rank %d: %s", e.Rank, e.Msg) }

// Unwrap returns the sentinel matching the failing rank's error.
func (e *PeerError) Unwrap() error { return e.err }

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
