package cpu_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
)

// TestTrainingConformance runs the training suite (layouts, k-grouped,
// grouped BF16) with the best kernel set, then quickly with every other
// set this machine runs.
func TestTrainingConformance(t *testing.T) {
	gemmtest.RunTraining(t, cpu.New(cpu.Options{}), gemmtest.Options{})
	for _, k := range kernelSets()[1:] {
		t.Run(k, func(t *testing.T) {
			gemmtest.RunTraining(t, cpu.New(cpu.Options{Kernels: k}), gemmtest.Options{Quick: true})
		})
	}
}

func FuzzCPUTraining(f *testing.F) { gemmtest.FuzzTraining(f, cpu.New(cpu.Options{})) }
