package mla_test

import (
	"math/rand/v2"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// TestMain fails the test binary when a test leaves a goroutine running.
func TestMain(m *testing.M) { leaktest.Main(m) }

func newRand(seed uint64) *rand.Rand { return testutil.RNG(seed) }
