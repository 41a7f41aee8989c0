// Package internal groups Fireflyer's shared internals (test metrics,
// kernels, system-call layers); nothing under it is part of the public API.
package internal
