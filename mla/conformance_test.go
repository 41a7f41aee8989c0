package mla_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/mlatest"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestConformanceRef(t *testing.T) { mlatest.Run(t, mla.NewRef(), mlatest.Options{}) }
func TestConformanceCPU(t *testing.T) { mlatest.Run(t, mla.Default(), mlatest.Options{}) }

// TestConformanceCPULevels runs the sampled suite on the cpu backend with
// its kernels forced down to AVX2 and to pure Go, so that every path this
// machine can execute is held to the oracle (the default run above uses the
// best level, AVX-512 here).
func TestConformanceCPULevels(t *testing.T) {
	for _, l := range []string{"avx2", "go"} {
		t.Run(l, func(t *testing.T) {
			be, err := mla.NewCPU(mla.CPUOptions{Kernels: l})
			if errors.Is(err, mla.ErrKernels) {
				t.Skipf("CPU or build lacks %s: %v", l, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			mlatest.Run(t, be, mlatest.Options{Short: true, Every: 3})
		})
	}
}

// TestNewCPU checks the kernel option: the default is the best set (the
// one CPU uses), an unknown name is an error wrapping ErrKernels, and the
// generic set is always there.
func TestNewCPU(t *testing.T) {
	type kerneled interface{ Kernels() string }
	be, err := mla.NewCPU(mla.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := be.(kerneled).Kernels(), mla.Default().(kerneled).Kernels(); got != want {
		t.Fatalf("default kernels %s, CPU has %s", got, want)
	}
	if _, err := mla.NewCPU(mla.CPUOptions{Kernels: "avx1024"}); !errors.Is(err, mla.ErrKernels) {
		t.Fatalf("unknown set: %v, want ErrKernels", err)
	}
	for _, name := range []string{"go", "generic"} {
		if be, err := mla.NewCPU(mla.CPUOptions{Kernels: name}); err != nil || be.(kerneled).Kernels() != "go" {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestConcurrentKernelSets decodes one case on the best kernel set and on
// the generic one at the same time (under -race in CI): each gives the
// bits it gives alone.
func TestConcurrentKernelSets(t *testing.T) {
	c := oracle.Case{B: 2, SQ: 1, SK: 300, HQ: 16, HKV: 1, Causal: true, DType: tensor.BF16T, Seed: 5}
	in, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := mla.NewCPU(mla.CPUOptions{Kernels: "go"})
	if err != nil {
		t.Fatal(err)
	}
	bes := []mla.Backend{mla.Default(), gen}
	want := make([][]float32, len(bes))
	for i, be := range bes {
		if want[i], _, err = mla.Decode(t.Context(), be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2*len(bes))
	done := make(chan struct{})
	for rep := 0; rep < 2; rep++ {
		for i, be := range bes {
			go func() {
				defer func() { done <- struct{}{} }()
				out, _, err := mla.Decode(t.Context(), be, in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts)
				if err != nil {
					errs <- err
					return
				}
				for j := range out {
					if out[j] != want[i][j] {
						errs <- fmt.Errorf("backend %d: out[%d] = %v concurrently, %v alone", i, j, out[j], want[i][j])
						return
					}
				}
			}()
		}
	}
	for range 2 * len(bes) {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
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
		mlatest.Run(t, page64Only{mla.Default()}, mlatest.Options{Short: true, Skip: []string{`_F16`}})
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
	_, _, err := mla.Decode(t.Context(), page64Only{mla.Default()}, mla.Query{Data: make([]float32, 8), B: 1, SQ: 1, HQ: 1},
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
