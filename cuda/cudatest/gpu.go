package cudatest

import (
	"os"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
)

// EnvRequireGPU, when set to 1, turns RequireGPU's skip into a failure: the
// GPU check script sets it so that a machine whose driver or NVRTC fails to
// load cannot pass by skipping everything.
const EnvRequireGPU = "FIREFLYER_REQUIRE_GPU"

var (
	gpuOnce sync.Once
	gpuCtx  *cuda.Context
	gpuErr  error
)

// RequireGPU returns a context on device 0, shared by all tests of the
// process (opened once, never closed: the process exit releases it), or
// skips the test with the reason no GPU can be used. With
// FIREFLYER_REQUIRE_GPU=1 it fails instead of skipping.
func RequireGPU(tb testing.TB) *cuda.Context {
	tb.Helper()
	gpuOnce.Do(func() { gpuCtx, gpuErr = cuda.Open(0) })
	if gpuErr != nil {
		if os.Getenv(EnvRequireGPU) == "1" {
			tb.Fatalf("GPU required (%s=1) but unavailable: %v", EnvRequireGPU, gpuErr)
		}
		tb.Skipf("skipping GPU test: %v", gpuErr)
	}
	return gpuCtx
}

// RequireNVRTC returns the system NVRTC or skips (fails with
// FIREFLYER_REQUIRE_GPU=1) saying why it cannot be loaded.
func RequireNVRTC(tb testing.TB) *cuda.NVRTC {
	tb.Helper()
	n, err := cuda.SystemNVRTC()
	if err != nil {
		if os.Getenv(EnvRequireGPU) == "1" {
			tb.Fatalf("NVRTC required (%s=1) but unavailable: %v", EnvRequireGPU, err)
		}
		tb.Skipf("skipping GPU test: %v", err)
	}
	return n
}
