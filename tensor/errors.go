package tensor

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrDType reports an unknown dtype or one an operation does not support.
	ErrDType = errors.New("tensor: bad dtype")
	// ErrShape reports a shape, stride or length that does not fit.
	ErrShape = errors.New("tensor: bad shape")
)
