//go:build !linux

package platform

import "errors"

// IOURing reports whether io_uring can be used; it is Linux-only.
func IOURing() error { return errors.New("io_uring exists only on Linux") }
