package mla_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/mla/kern"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/mlatest"
)

func TestConformanceRef(t *testing.T) { mlatest.Run(t, mla.Ref, mlatest.Options{}) }
func TestConformanceCPU(t *testing.T) { mlatest.Run(t, mla.CPU, mlatest.Options{}) }

// TestConformanceCPULevels runs the sampled suite on the cpu backend with
// its kernels forced down to AVX2 and to pure Go, so that every path this
// machine can execute is held to the oracle (the default run above uses the
// best level, AVX-512 here).
func TestConformanceCPULevels(t *testing.T) {
	for _, l := range []string{"avx2", "go"} {
		t.Run(l, func(t *testing.T) {
			restore := kern.ForceLevel(l)
			defer restore()
			if kern.Level() != l {
				t.Skipf("CPU or build lacks %s", l)
			}
			mlatest.Run(t, mla.CPU, mlatest.Options{Short: true})
		})
	}
}
