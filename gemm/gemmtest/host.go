package gemmtest

import "github.com/fireflyer-go/fireflyer/tensor"

// hostOf returns the host slice of s (nil for nil). The suite builds every
// operand in host memory, so anything else is a bug in the suite.
func hostOf[T any](s tensor.Storage[T]) []T {
	h, err := tensor.HostSlice(s)
	if err != nil {
		panic(err)
	}
	return h
}

// trim returns s's first n elements as host storage.
func trim[T any](s tensor.Storage[T], n int) tensor.Storage[T] {
	return tensor.Host[T](hostOf(s)[:n])
}
