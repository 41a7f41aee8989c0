package ref_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
)

// refMaxMACs keeps the scalar reference within the long mode's time
// (FIREFLYER_LONG=1): it skips the M=1024 shapes of the full grid.
const refMaxMACs = 1 << 31

func TestConformance(t *testing.T) {
	gemmtest.Run(t, ref.New(), gemmtest.Options{MaxMACs: refMaxMACs})
}

func FuzzRef(f *testing.F) { gemmtest.Fuzz(f, ref.New()) }

func TestTrainingConformance(t *testing.T) {
	gemmtest.RunTraining(t, ref.New(), gemmtest.Options{MaxMACs: refMaxMACs})
}

func FuzzRefTraining(f *testing.F) { gemmtest.FuzzTraining(f, ref.New()) }
