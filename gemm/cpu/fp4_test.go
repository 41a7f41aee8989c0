package cpu_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
)

// TestConformanceFP4 runs the FP8×FP4 suite with the best kernel set, then
// the quick suite with every other set and with one worker.
func TestConformanceFP4(t *testing.T) {
	gemmtest.RunFP4(t, cpu.New(cpu.Options{}), gemmtest.Options{})
	for _, k := range kernelSets()[1:] {
		t.Run(k, func(t *testing.T) {
			gemmtest.RunFP4(t, cpu.New(cpu.Options{Kernels: k}), gemmtest.Options{Quick: true})
		})
	}
	t.Run("OneWorker", func(t *testing.T) {
		gemmtest.RunFP4(t, cpu.New(cpu.Options{Workers: 1}), gemmtest.Options{Quick: true})
	})
}

func FuzzCPUFP4(f *testing.F) { gemmtest.FuzzFP4(f, cpu.New(cpu.Options{})) }
