//go:build !linux

// Package uring is a small io_uring layer built on raw system calls. It
// exists only on Linux; elsewhere the package is empty but for
// ErrUnsupported, and package fs falls back to its posix backend.
package uring

import "errors"

// ErrUnsupported: io_uring exists only on Linux.
var ErrUnsupported = errors.New("uring: io_uring unavailable (Linux only)")
