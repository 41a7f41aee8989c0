package mla_test

import (
	"math/rand/v2"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRand(seed uint64) *rand.Rand { return testutil.RNG(seed) }
