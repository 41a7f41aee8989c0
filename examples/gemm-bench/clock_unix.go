//go:build unix

package main

import "golang.org/x/sys/unix"

// haveCPUClocks reports whether threadCPU and processCPU measure CPU time.
const haveCPUClocks = true

// threadCPU returns the calling thread's CPU seconds
// (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)*1e-9
}

// processCPU returns the process's user+system CPU seconds.
func processCPU() float64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)*1e-6
}
