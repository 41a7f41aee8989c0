package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// testutilRNG returns a fresh generator per run (inputs differ every time,
// as the method asks) and logs its seed so a failure can be replayed.
func testutilRNG(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return testutil.RNG(seed)
}

func calcDiff(x, y []float64) float64 { return testutil.CalcDiff(x, y) }

func isNegInf(v float64) bool { return math.IsInf(v, -1) }

func testutilNormal(r *rand.Rand, n int) []float32 { return testutil.Normal(r, n, 0, 1) }
