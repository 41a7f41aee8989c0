package ref_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
)

// refIndexerMACs keeps the scalar reference's indexer cases within the
// test time: it skips the long mode's larger shapes.
const refIndexerMACs = 1 << 28

func TestIndexerConformance(t *testing.T) {
	gemmtest.RunIndexer(t, ref.New(), gemmtest.IndexerOptions{MaxMACs: refIndexerMACs, Reruns: 1})
}

func FuzzIndexer(f *testing.F) { gemmtest.FuzzIndexer(f, ref.New()) }
