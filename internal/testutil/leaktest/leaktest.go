// Package leaktest holds the goroutine checks Fireflyer's tests share: the
// leak check every test binary runs from TestMain (Main) and the check that
// calls return at all (Returns). It is a separate package from testutil because
// it imports testing, which the fireflyer binary must not link.
package leaktest

import (
	"testing"
	"time"

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

// Find returns an error naming every goroutine still running other than the
// calling one and the process-lifetime ones above, or nil when there is none.
// It is for a test binary that re-executes itself as a child process (a rank)
// and must check for leaks before its own os.Exit, where Main does not run.
func Find() error { return goleak.Find(processLifetime...) }

// Returns runs each named call in its own subtest and fails that subtest
// when the call returns an error or has not returned within limit (it hangs
// or walks a huge empty range). A call that never returns is left running;
// Main then reports its goroutine as well.
func Returns(t *testing.T, limit time.Duration, calls map[string]func() error) {
	t.Helper()
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- call() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(limit):
				t.Fatal("did not return")
			}
		})
	}
}
