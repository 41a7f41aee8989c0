package cpu_test

import (
	"context"
	"errors"
	"github.com/fireflyer-go/fireflyer/tensor"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
)

// kernelSets returns the kernel sets this machine runs, best first.
func kernelSets() []string {
	var out []string
	for _, k := range []string{"avx512", "avx2", "neon", "go"} {
		if _, err := cpu.NewBackend(cpu.Options{Kernels: k}); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// TestConformance runs the full suite with the best kernel set of this
// machine (AVX-512, AVX2 or, under the noasm tag, pure Go).
func TestConformance(t *testing.T) {
	be := cpu.New(cpu.Options{})
	t.Logf("kernel set %s", be.Kernel())
	if be.Kernel() != cpu.Kernel() || be.Kernel() != kernelSets()[0] {
		t.Fatalf("New selects %s, Kernel() says %s, best available %s", be.Kernel(), cpu.Kernel(), kernelSets()[0])
	}
	gemmtest.Run(t, be, gemmtest.Options{})
}

// TestConformanceOtherKernels runs the suite with every other kernel set
// the machine can run, with the quick dense grid (the full grid runs with the
// best set; the kernels package tests every set on its own).
func TestConformanceOtherKernels(t *testing.T) {
	for _, k := range kernelSets()[1:] {
		t.Run(k, func(t *testing.T) {
			be, err := cpu.NewBackend(cpu.Options{Kernels: k})
			if err != nil || be.Kernel() != k {
				t.Fatalf("cannot select kernel %s: %v", k, err)
			}
			gemmtest.Run(t, be, gemmtest.Options{Quick: true})
		})
	}
}

// TestBadKernels checks that an unknown kernel set is an error, from
// NewBackend and from every call of a New backend.
func TestBadKernels(t *testing.T) {
	if _, err := cpu.NewBackend(cpu.Options{Kernels: "sse9"}); !errors.Is(err, cpu.ErrKernels) {
		t.Fatalf("NewBackend(sse9): %v, want ErrKernels", err)
	}
	s := oracle.Shape{M: 4, N: 8, K: 128}
	p := oracle.NewProblem(1, s, tensor.QuantOptions{})
	d := oracle.NewOut(s.M, s.N, 0, false, 0)
	be := cpu.New(cpu.Options{Kernels: "sse9"})
	if err := gemm.FP8GemmNT(context.Background(), be, p.A, p.B, d); !errors.Is(err, cpu.ErrKernels) {
		t.Fatalf("GemmNT on a bad kernel set: %v, want ErrKernels", err)
	}
}

// TestBadWorkers: a negative Workers is refused, by the constructor, by
// every call of a Backend New made from it, and through gemm's registry.
func TestBadWorkers(t *testing.T) {
	if _, err := cpu.NewBackend(cpu.Options{Workers: -1}); !errors.Is(err, cpu.ErrOptions) {
		t.Fatalf("NewBackend(Workers -1): %v, want ErrOptions", err)
	}
	if _, err := gemm.NewBackend("cpu", gemm.Options{Workers: -1}); !errors.Is(err, cpu.ErrOptions) {
		t.Fatalf("gemm.NewBackend(cpu, Workers -1): %v, want ErrOptions", err)
	}
	s := oracle.Shape{M: 4, N: 8, K: 128}
	p := oracle.NewProblem(1, s, tensor.QuantOptions{})
	d := oracle.NewOut(s.M, s.N, 0, false, 0)
	if err := gemm.FP8GemmNT(context.Background(), cpu.New(cpu.Options{Workers: -3}), p.A, p.B, d); !errors.Is(err, cpu.ErrOptions) {
		t.Fatalf("GemmNT with Workers -3: %v, want ErrOptions", err)
	}
}

// TestConcurrentKernelSets runs a backend per kernel set at the same time
// (under -race in CI): each gives the bits it gives when run alone.
func TestConcurrentKernelSets(t *testing.T) {
	s := oracle.Shape{M: 96, N: 256, K: 512}
	p := oracle.NewProblem(7, s, tensor.QuantOptions{})
	sets := kernelSets()
	want := make([][]float32, len(sets))
	bes := make([]*cpu.Backend, len(sets))
	for i, k := range sets {
		be, err := cpu.NewBackend(cpu.Options{Kernels: k})
		if err != nil {
			t.Fatal(err)
		}
		bes[i] = be
		d := oracle.NewOut(s.M, s.N, 0, true, 0)
		if err := gemm.FP8GemmNT(context.Background(), be, p.A, p.B, d); err != nil {
			t.Fatal(err)
		}
		want[i] = d.F32.(tensor.Host[float32])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(sets))
	for rep := 0; rep < 3; rep++ {
		for i, be := range bes {
			wg.Go(func() {
				d := oracle.NewOut(s.M, s.N, 0, true, 0)
				if err := gemm.FP8GemmNT(context.Background(), be, p.A, p.B, d); err != nil {
					errs <- err
					return
				}
				for j, v := range d.F32.(tensor.Host[float32]) {
					if v != want[i][j] {
						errs <- errors.New(sets[i] + ": concurrent result differs from the same set run alone")
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSingleWorker(t *testing.T) {
	gemmtest.Run(t, cpu.New(cpu.Options{Workers: 1}), gemmtest.Options{Quick: true})
}

func FuzzCPU(f *testing.F) { gemmtest.Fuzz(f, cpu.New(cpu.Options{})) }
