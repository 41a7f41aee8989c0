// Package cpu is the fast CPU backend of gemm: DeepGEMM's blocked FP8 GEMM
// restructured for CPU SIMD (x86-64 and arm64). Per 128-wide K block it decodes the E4M3
// panels of A and B to float32 once into packed buffers, runs a
// register-blocked micro-kernel over them (AVX-512: a 32×12 tile in 24 zmm
// accumulators; AVX2+FMA: 16×6 in 12 ymm; NEON on arm64: 16×6 in 24 q
// registers; pure Go under the noasm tag; New
// takes the best this CPU runs, Options.Kernels names one) and promotes each 128-K partial with A's and B's scales
// into a float32 C tile, exactly the two-level accumulation of DeepGEMM's
// SM90 kernel (deep_gemm/include/deep_gemm/fp8_gemm.cuh). Tiles of the
// output are spread over goroutines; buffers come from sync.Pool, so a
// steady-state call does not allocate.
//
// The FP8×FP4 calls (gemm.FP4Backend) run the same machinery with an FP4
// B: each group of B is decoded once per call, in windows of columns of at
// most 32 MiB, into float32 with every element's own 1×32 or 1×128 scale
// applied (exact for UE8M0 scales); the tiles of that group's rows then run
// with the micro-kernel reading its panels from there (B's column scale 1),
// so one call per 128-K block serves both granularities. Decoding is scalar
// Go (about a cycle per element), which pays off only over many rows: on
// one AVX-512 thread an FP8×FP4 call runs at 0.4× the FP8 call's GFLOP/s at
// M = 1, 0.75× at M = 128 and 0.9–1.0× from M = 1024 (BENCHMARKS.md).
//
// Results agree with gemm/ref within calc_diff 1e−5 (only rounding order
// differs: the cpu kernels use fused multiply-add).
//
// Goroutines: the first parallel call starts up to GOMAXPROCS−1 helper
// goroutines of the module's shared worker pool (also used by package mla)
// that stay parked for the life of the process and join later calls. Tests
// that check for leaks with go.uber.org/goleak ignore them with
// goleak.IgnoreTopFunction("github.com/fireflyer-go/fireflyer/internal/par.helperLoop").
//
// Where it sits: a backend of package gemm (docs/architecture.md), built on the
// SIMD kernels of the basement; it passes gemm/gemmtest.
package cpu
