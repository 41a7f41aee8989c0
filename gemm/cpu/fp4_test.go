package cpu_test

import (
	"context"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestConformanceFP4 runs the FP8×FP4 suite with the best kernel set, then
// the quick suite with the other SIMD sets and with one worker. The pure-Go
// set runs the full suite as the best set of the noasm build (the CI step
// go test -tags noasm), so it is not repeated here.
func TestConformanceFP4(t *testing.T) {
	gemmtest.RunFP4(t, cpu.New(cpu.Options{}), gemmtest.Options{})
	for _, k := range kernelSets()[1:] {
		if k == "go" {
			continue
		}
		t.Run(k, func(t *testing.T) {
			gemmtest.RunFP4(t, cpu.New(cpu.Options{Kernels: k}), gemmtest.Options{Quick: true})
		})
	}
	t.Run("OneWorker", func(t *testing.T) {
		gemmtest.RunFP4(t, cpu.New(cpu.Options{Workers: 1}), gemmtest.Options{Quick: true})
	})
}

func FuzzCPUFP4(f *testing.F) { gemmtest.FuzzFP4(f, cpu.New(cpu.Options{})) }

// TestFP4NoAllocs: a steady-state FP8×FP4 call allocates nothing (its
// decoded B window and scratch come from the call pool).
func TestFP4NoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	s := oracle.Shape{M: 64, N: 576, K: 1024}
	p := oracle.NewFP4Problem(3, s, 32, tensor.QuantOptions{UE8M0: true})
	d := oracle.NewOut(s.M, s.N, 0, false, 0)
	be := cpu.New(cpu.Options{})
	ctx := context.Background()
	_ = gemm.FP8FP4GemmNT(ctx, be, p.A, p.B, d)
	if n := testing.AllocsPerRun(20, func() { _ = gemm.FP8FP4GemmNT(ctx, be, p.A, p.B, d) }); n > 0 {
		t.Errorf("FP8FP4GemmNT allocates %.1f times per call in steady state", n)
	}
}
