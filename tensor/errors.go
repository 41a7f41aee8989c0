package tensor

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrDType reports an unknown dtype or one an operation does not support.
	ErrDType = errors.New("tensor: bad dtype")
	// ErrShape reports a shape, stride or length that does not fit.
	ErrShape = errors.New("tensor: bad shape")
)

// ErrScales reports FP8 block scales whose layout, length or format does not
// match their operand.
var ErrScales = errors.New("tensor: bad scales")

// ErrNotHost reports storage the CPU cannot address (device memory) handed
// to code that computes on the host: the ref and cpu backends, the
// quantizers, Stack, Dequantize.
var ErrNotHost = errors.New("tensor: storage is not host memory")
