package cpu

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
)

// TestFP4Windows runs the quick FP8×FP4 suite with B decoded in windows of
// at most 5000 floats, so that every call with more than a tile's worth of
// B goes through many windows.
func TestFP4Windows(t *testing.T) {
	old := fp4PackMax
	fp4PackMax = 5000
	defer func() { fp4PackMax = old }()
	gemmtest.RunFP4(t, New(Options{}), gemmtest.Options{Quick: true})
}
