package cpu_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/internal/gemm/kernels"
)

func TestMain(m *testing.M) {
	// The backend's parked helper goroutines live for the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/fireflyer-go/fireflyer/gemm/cpu.helperLoop"))
}

// TestConformance runs the full suite with the best kernel set of this
// machine (AVX-512, AVX2 or, under the noasm tag, pure Go).
func TestConformance(t *testing.T) {
	t.Logf("kernel set %s", cpu.Kernel())
	gemmtest.Run(t, cpu.New(), gemmtest.Options{})
}

// TestConformanceOtherKernels runs the suite with every other kernel set
// the machine can run (a quick dense grid under -short).
func TestConformanceOtherKernels(t *testing.T) {
	best := kernels.Available()[0]
	defer kernels.Use(best)
	for _, k := range kernels.Available()[1:] {
		t.Run(k, func(t *testing.T) {
			if !kernels.Use(k) {
				t.Fatalf("cannot select kernel %s", k)
			}
			gemmtest.Run(t, cpu.New(), gemmtest.Options{Quick: testing.Short()})
		})
	}
}

func TestSingleWorker(t *testing.T) {
	gemmtest.Run(t, cpu.NewWithOptions(cpu.Options{Workers: 1}), gemmtest.Options{Quick: true})
}

func FuzzCPU(f *testing.F) { gemmtest.Fuzz(f, cpu.New()) }
