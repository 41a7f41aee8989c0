package cpu_test

import (
	"context"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"
	"os"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// benchShapes returns the benchmark grid: GEMM_BENCH_SHAPES="M,N,K;M,N,K"
// or the default below (the (N,K) shapes of the conformance grid).
func benchShapes() []oracle.Shape {
	spec := os.Getenv("GEMM_BENCH_SHAPES")
	if spec == "" {
		spec = "64,2112,7168;128,2112,7168;1024,2112,7168;64,576,7168;128,576,7168;1024,576,7168;" +
			"64,4096,1536;128,4096,1536;1024,4096,1536;64,4096,512;128,4096,512;1024,4096,512;" +
			"64,7168,2048;128,7168,2048;1024,7168,2048"
	}
	var out []oracle.Shape
	for _, f := range strings.Split(spec, ";") {
		v := strings.Split(f, ",")
		if len(v) != 3 {
			continue
		}
		m, _ := strconv.Atoi(v[0])
		n, _ := strconv.Atoi(v[1])
		k, _ := strconv.Atoi(v[2])
		out = append(out, oracle.Shape{M: m, N: n, K: k})
	}
	return out
}

// benchBackend returns the backend the benchmarks time: the kernel set
// GEMM_BENCH_KERNELS names ("avx512", "avx2", "go"; "" for the best).
func benchBackend(b *testing.B) *cpu.Backend {
	be, err := cpu.NewBackend(cpu.Options{Kernels: os.Getenv("GEMM_BENCH_KERNELS")})
	if err != nil {
		b.Skip("GEMM_BENCH_KERNELS:", err)
	}
	return be
}

func report(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemmNT times the cpu backend on FP8 inputs with BF16 output.
func BenchmarkGemmNT(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.String(), func(b *testing.B) {
			p := oracle.NewProblem(1, s, tensor.QuantOptions{})
			d := oracle.NewOut(s.M, s.N, 0, false, 0)
			be := benchBackend(b)
			ctx := context.Background()
			if err := gemm.FP8GemmNT(ctx, be, p.A, p.B, d); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = gemm.FP8GemmNT(ctx, be, p.A, p.B, d)
			}
			report(b, 2*float64(s.M)*float64(s.N)*float64(s.K))
		})
	}
}

// BenchmarkGonumSgemm times gonum's Sgemm (NoTrans, Trans) on the same
// problems dequantized to float32: the same math without FP8.
func BenchmarkGonumSgemm(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.String(), func(b *testing.B) {
			p := oracle.NewProblem(1, s, tensor.QuantOptions{})
			a := blas32.General{Rows: s.M, Cols: s.K, Stride: s.K, Data: p.DA}
			bb := blas32.General{Rows: s.N, Cols: s.K, Stride: s.K, Data: p.DB}
			c := blas32.General{Rows: s.M, Cols: s.N, Stride: s.N, Data: make([]float32, s.M*s.N)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, bb, 0, c)
			}
			report(b, 2*float64(s.M)*float64(s.N)*float64(s.K))
		})
	}
}

// BenchmarkGrouped compares the grouped calls with a dense call of equal
// FLOPs: G groups of M/G rows against B [G,N,K].
func BenchmarkGrouped(b *testing.B) {
	const g, m, n, k = 4, 1024, 4096, 2048
	ctx := context.Background()
	be := benchBackend(b)
	dense := oracle.NewProblem(2, oracle.Shape{M: m, N: n, K: k}, tensor.QuantOptions{})
	var bs []*tensor.FP8Matrix
	for i := 0; i < g; i++ {
		bs = append(bs, dense.B)
	}
	bg, _ := tensor.Stack(bs...)
	idx := make([]int32, m)
	masked := make([]int32, g)
	for i := range idx {
		idx[i] = int32(i / (m / g))
	}
	for i := range masked {
		masked[i] = m / g
	}
	am := *dense.A
	am.Groups, am.Rows = g, m/g
	flops := 2 * float64(m) * n * k
	b.Run(fmt.Sprintf("dense/M=%d/N=%d/K=%d", m, n, k), func(b *testing.B) {
		d := oracle.NewOut(m, n, 0, false, 0)
		for i := 0; i < b.N; i++ {
			_ = gemm.FP8GemmNT(ctx, be, dense.A, dense.B, d)
		}
		report(b, flops)
	})
	b.Run(fmt.Sprintf("contiguous/G=%d/M=%d/N=%d/K=%d", g, m/g, n, k), func(b *testing.B) {
		d := oracle.NewOut(m, n, 0, false, 0)
		for i := 0; i < b.N; i++ {
			if err := gemm.GroupedContiguousNT(ctx, be, dense.A, bg, d, idx); err != nil {
				b.Fatal(err)
			}
		}
		report(b, flops)
	})
	b.Run(fmt.Sprintf("masked/G=%d/M=%d/N=%d/K=%d", g, m/g, n, k), func(b *testing.B) {
		d := oracle.NewOut(m, n, 0, false, 0)
		for i := 0; i < b.N; i++ {
			if err := gemm.GroupedMaskedNT(ctx, be, &am, bg, d, masked, m/g); err != nil {
				b.Fatal(err)
			}
		}
		report(b, flops)
	})
}

// BenchmarkPeak runs the register-only FMA loop on every core: the
// float32 FMA peak that "fraction of peak" divides by.
func BenchmarkPeak(b *testing.B) {
	be := benchBackend(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			be.PeakLoop(10000)
		}
	})
	per := be.PeakLoop(1)
	b.ReportMetric(per*10000*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func TestNoAllocs(t *testing.T) {
	if raceEnabled { // the race detector's own allocations are counted too
		t.Skip("allocation counts are not meaningful under -race")
	}
	s := oracle.Shape{M: 64, N: 576, K: 1024}
	p := oracle.NewProblem(3, s, tensor.QuantOptions{})
	d := oracle.NewOut(s.M, s.N, 0, false, 0)
	be := cpu.New(cpu.Options{})
	ctx := context.Background()
	_ = gemm.FP8GemmNT(ctx, be, p.A, p.B, d)
	if n := testing.AllocsPerRun(20, func() { _ = gemm.FP8GemmNT(ctx, be, p.A, p.B, d) }); n > 0 {
		t.Errorf("GemmNT allocates %.1f times per call in steady state", n)
	}
}

// BenchmarkBF16GemmNT times the cpu backend's BF16 GEMM (float32
// accumulation, BF16 output) on the benchmark grid.
func BenchmarkBF16GemmNT(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.String(), func(b *testing.B) {
			r := testutil.RNG(4)
			bf := func(n int) tensor.Storage[tensor.BF16] {
				v := make([]tensor.BF16, n)
				tensor.EncodeBF16(v, testutil.Normal(r, n, 0, 1))
				return tensor.Host[tensor.BF16](v)
			}
			am := &gemm.BF16Matrix{Rows: s.M, K: s.K, Data: bf(s.M * s.K)}
			bm := &gemm.BF16Matrix{Rows: s.N, K: s.K, Data: bf(s.N * s.K)}
			d := oracle.NewOut(s.M, s.N, 0, false, 0)
			be := benchBackend(b)
			ctx := context.Background()
			if err := gemm.BF16GemmNT(ctx, be, am, bm, d); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = gemm.BF16GemmNT(ctx, be, am, bm, d)
			}
			report(b, 2*float64(s.M)*float64(s.N)*float64(s.K))
		})
	}
}
