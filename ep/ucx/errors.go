package ucx

import "errors"

// ErrUnavailable is returned (wrapped) when UCX cannot be used here: a
// library that does not load (the message names it and how to install
// it), a UCX older than 1.13, or an operating system other than Linux.
var ErrUnavailable = errors.New("ucx: unavailable")
