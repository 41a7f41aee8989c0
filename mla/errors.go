package mla

import (
	"errors"
	"fmt"
)

// Errors returned by this package; test with errors.Is. Every error that
// concerns an argument is an *ArgError that names the argument and wraps one
// of these sentinels.
var (
	// ErrShape reports a shape, length or dimension that does not fit
	// (h_q not divisible by h_kv, HeadDimV > HeadDim, a slice of the wrong
	// length, a schedule planned for other sequence lengths).
	ErrShape = errors.New("mla: bad shape")
	// ErrBlockTable reports a block-table row that is too short for its
	// sequence or a block id outside [0, NumBlocks).
	ErrBlockTable = errors.New("mla: bad block table")
	// ErrSeqlen reports a negative cache sequence length.
	ErrSeqlen = errors.New("mla: bad cache sequence length")
	// ErrIndex reports a SparseDecode index other than −1 outside
	// [0, tokens of the cache) (upstream reads out of bounds there).
	// SparsePrefill has no such error: as upstream, it treats entries
	// outside [0, SKV) as invalid keys.
	ErrIndex = errors.New("mla: bad sparse index")
	// ErrDType reports a cache storage dtype other than F32, BF16 or F16.
	ErrDType = errors.New("mla: unsupported dtype")
	// ErrUnsupported reports a problem a backend declares it cannot run
	// (for example a CUDA kernel asked for a page size other than 64).
	ErrUnsupported = errors.New("mla: unsupported by backend")
	// ErrUnknownBackend reports a backend name that is not registered.
	ErrUnknownBackend = errors.New("mla: unknown backend")
)

// ArgError is the error returned for a bad argument: Arg names it (as in
// the upstream Python signature where there is one: "q", "k_cache",
// "block_table", "cache_seqlens", "head_dim_v", "num_splits"...), Err is one
// of the sentinels above and Msg says what is wrong.
type ArgError struct {
	Arg string
	Err error
	Msg string

	cause error // an underlying error errors.Is also matches (tensor.ErrNotHost)
}

// Error returns "<sentinel>: <arg>: <what is wrong>".
func (e *ArgError) Error() string { return fmt.Sprintf("%v: %s: %s", e.Err, e.Arg, e.Msg) }

// Unwrap returns the sentinel, so errors.Is(err, ErrShape) works.
func (e *ArgError) Unwrap() error { return e.Err }

// Is reports whether the underlying cause, if any, matches target: storage
// a host backend cannot address is ErrUnsupported and tensor.ErrNotHost.
func (e *ArgError) Is(target error) bool { return e.cause != nil && errors.Is(e.cause, target) }

func argErr(arg string, sentinel error, format string, a ...any) error {
	return &ArgError{Arg: arg, Err: sentinel, Msg: fmt.Sprintf(format, a...)}
}
