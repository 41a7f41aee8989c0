package cpu

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
)

// TestFP4Windows runs the quick FP8×FP4 suite with B decoded in windows
// (the pure-Go decoder's path) on the best kernel set, first in windows as
// large as calls use, then in windows of at most 5000 floats, so that every
// call with more than a tile's worth of B goes through many windows.
func TestFP4Windows(t *testing.T) {
	old := fp4PackMax
	fp4ForceWindows = true
	defer func() { fp4PackMax, fp4ForceWindows = old, false }()
	gemmtest.RunFP4(t, New(Options{}), gemmtest.Options{Quick: true})
	fp4PackMax = 5000
	t.Run("Small", func(t *testing.T) { gemmtest.RunFP4(t, New(Options{}), gemmtest.Options{Quick: true}) })
}
