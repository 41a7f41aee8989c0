//go:build !linux

package demo

// physicalMemory returns 0: unknown on this system, so the demo does not
// refuse a size.
func physicalMemory() int64 { return 0 }
