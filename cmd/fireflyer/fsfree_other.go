//go:build !unix

package main

// freeSpace returns -1: the free space is not known on this platform.
func freeSpace(dir string) int64 { return -1 }
