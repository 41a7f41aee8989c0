// Package leaktest is the one goroutine-leak check that Fireflyer's test
// binaries run from TestMain. It is a separate package from testutil because
// it imports testing, which the fireflyer binary must not link.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// processLifetime names the goroutines that live for the whole process by
// design and so are not leaks: internal/par's parked pool helpers (gemm/cpu,
// mla and internal/kernels use the pool) and the OS-thread loop of a cuda
// Context shared for the process (cudatest.RequireGPU).
var processLifetime = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/fireflyer-go/fireflyer/internal/par.helperLoop"),
	goleak.IgnoreAnyFunction("github.com/fireflyer-go/fireflyer/cuda.(*Context).loop"),
}

// Main runs the tests of m and then fails the test binary (exit status 1)
// when any goroutine other than the process-lifetime ones above is still
// running; it does not return (goleak.VerifyTestMain calls os.Exit). Call it
// as the whole body of TestMain, or as its last statement.
func Main(m *testing.M) { goleak.VerifyTestMain(m, processLifetime...) }
