//go:build linux || darwin || freebsd || netbsd

package cudatest

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
)

// Open loads f as the CUDA driver and opens a context on device 0, which
// is closed when tb's test ends (a Close error fails tb). Any load or open
// error fails tb at once.
func (f *Fake) Open(tb testing.TB) (*cuda.Driver, *cuda.Context) {
	tb.Helper()
	d, err := cuda.LoadDriver(f.Opener())
	if err != nil {
		tb.Fatalf("LoadDriver(fake): %v", err)
	}
	c, err := d.Open(0)
	if err != nil {
		tb.Fatalf("Open(0): %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return d, c
}

// NVRTC loads f as NVRTC; an error fails tb at once.
func (f *Fake) NVRTC(tb testing.TB) *cuda.NVRTC {
	tb.Helper()
	n, err := cuda.LoadNVRTC(f.Opener())
	if err != nil {
		tb.Fatalf("LoadNVRTC(fake): %v", err)
	}
	return n
}
