//go:build (darwin || freebsd || netbsd) && !linux

package cudatest

// threadID cannot tell threads apart here; thread-binding checks are
// meaningful on Linux only.
func threadID() int { return 0 }
