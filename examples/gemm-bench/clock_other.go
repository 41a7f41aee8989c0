//go:build !unix

package main

// haveCPUClocks reports whether threadCPU and processCPU measure CPU time:
// not on this OS, where -threads 1 is refused.
const haveCPUClocks = false

// threadCPU is unavailable here; main refuses -threads 1 first.
func threadCPU() float64 { return 0 }

// processCPU is unavailable here; main refuses -threads 1 first.
func processCPU() float64 { return 0 }
