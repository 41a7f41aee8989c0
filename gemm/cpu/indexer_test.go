package cpu_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
)

func TestIndexerConformance(t *testing.T) {
	gemmtest.RunIndexer(t, cpu.New(cpu.Options{}), gemmtest.IndexerOptions{Reruns: 20})
	for _, k := range []string{"avx2", "go"} {
		be, err := cpu.NewBackend(cpu.Options{Kernels: k})
		if err != nil {
			t.Logf("kernels %q: %v", k, err)
			continue
		}
		t.Run("kernels="+k, func(t *testing.T) {
			gemmtest.RunIndexer(t, be, gemmtest.IndexerOptions{Quick: true, Reruns: 1})
		})
	}
	t.Run("workers=1", func(t *testing.T) {
		gemmtest.RunIndexer(t, cpu.New(cpu.Options{Workers: 1}), gemmtest.IndexerOptions{Quick: true, Reruns: 1})
	})
}

func FuzzIndexer(f *testing.F) { gemmtest.FuzzIndexer(f, cpu.New(cpu.Options{})) }
