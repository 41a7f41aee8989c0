package mla_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/mla/kern"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/mlatest"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestConformanceRef(t *testing.T) { mlatest.Run(t, mla.Ref, mlatest.Options{}) }
func TestConformanceCPU(t *testing.T) { mlatest.Run(t, mla.CPU, mlatest.Options{}) }

// TestConformanceCPULevels runs the sampled suite on the cpu backend with
// its kernels forced down to AVX2 and to pure Go, so that every path this
// machine can execute is held to the oracle (the default run above uses the
// best level, AVX-512 here).
func TestConformanceCPULevels(t *testing.T) {
	for _, l := range []string{"avx2", "go"} {
		t.Run(l, func(t *testing.T) {
			restore := kern.ForceLevel(l)
			defer restore()
			if kern.Level() != l {
				t.Skipf("CPU or build lacks %s", l)
			}
			mlatest.Run(t, mla.CPU, mlatest.Options{Short: true, Every: 3})
		})
	}
}

// page64Only is the cpu backend declaring, as the upstream CUDA kernel
// does, that it runs page size 64 only.
type page64Only struct{ mla.Backend }

func (page64Only) Name() string { return "page64" }
func (b page64Only) Supports(p *mla.Problem) error {
	if p.Cache.PageSize != mla.UpstreamPageSize {
		return fmt.Errorf("%w: page size %d (only %d)", mla.ErrUnsupported, p.Cache.PageSize, mla.UpstreamPageSize)
	}
	return nil
}

// TestConformanceSkips shows the suite skipping what a backend declares
// unsupported (through Supports) and what the caller names (Options.Skip),
// and still running the rest.
func TestConformanceSkips(t *testing.T) {
	var ran, skipped int
	t.Run("suite", func(t *testing.T) {
		mlatest.Run(t, page64Only{mla.CPU}, mlatest.Options{Short: true, Skip: []string{`_F16`}})
	})
	// The sample must hold cases of both kinds for the run above to mean
	// anything.
	for _, c := range mlatest.Grid(true) {
		n := c.Name()
		if strings.Contains(n, "_p64_") && !strings.Contains(n, "_F16") {
			ran++
		} else {
			skipped++
		}
	}
	if ran == 0 || skipped == 0 {
		t.Fatalf("grid sample has %d page-64 non-F16 cases and %d others; want both", ran, skipped)
	}
	_, _, err := mla.Decode(t.Context(), page64Only{mla.CPU}, mla.Query{Data: make([]float32, 8), B: 1, SQ: 1, HQ: 1},
		mustCache(t, 16), [][]int32{{0}}, []int32{1}, nil)
	if !errors.Is(err, mla.ErrUnsupported) {
		t.Fatalf("page 16 on a page-64 backend: %v, want ErrUnsupported", err)
	}
}

func mustCache(t *testing.T, page int) *mla.PagedCache {
	c, err := mla.NewPagedCache(tensor.BF16T, 1, page, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
