package mla_test

import (
	"math/rand/v2"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines; the shared worker pool's parked
// helpers live for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/fireflyer-go/fireflyer/internal/par.helperLoop"))
}

func newRand(seed uint64) *rand.Rand { return testutil.RNG(seed) }
