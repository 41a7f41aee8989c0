package fstest

import (
	"io"
	"syscall"
)

var (
	syscallEAGAIN = syscall.EAGAIN
	ioEOF         = io.EOF
)
