package ref_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
)

func TestConformanceFP4(t *testing.T) {
	gemmtest.RunFP4(t, ref.New(), gemmtest.Options{MaxMACs: refMaxMACs})
}

func FuzzRefFP4(f *testing.F) { gemmtest.FuzzFP4(f, ref.New()) }
