// Package kernels holds Fireflyer's CUDA kernels, embedded as CUDA C++
// source (self-contained: no headers, no CUTLASS) and compiled on first
// use by package jit for the device's architecture, and the Go calls that
// launch them on a cuda.Context.
//
// Stage 1 kernels, simple and checked rather than fast:
//
//   - fp8_gemm.cu, FP8GemmNT: FP8 E4M3 block-scaled GEMM in the NT layout,
//     D[m,n] = Σ_kb SA[m,kb]·SB[n/128,kb]·Σ_{k in kb} A[m,k]·B[n,k], with
//     per-token 1x128 scales for A, 128x128 block scales for B, float32
//     accumulation promoted every 128 K, BF16 or float32 output
//     (upstream: DeepGEMM fp8_gemm_nt).
//   - mla_decode.cu, MLADecode: BF16 MLA decode over a paged cache (page
//     64, d = 576, dv = 512) with split-KV partial outputs and LSE and a
//     combine kernel (upstream: FlashMLA flash_mla_with_kvcache).
//
// Tests check what needs no GPU (embedding, template arguments against the
// sources, launch-argument packing against the kernels' declared
// parameters), run the exact sources on a CPU emulator when g++ is present
// (testdata/emu), and, on a GPU, compare with float64 references using
// DeepGEMM's calc_diff gates (TestGPU*, BenchmarkGPU*; see
// scripts/gpu-check.sh).
//
// The shortest useful program:
//
//	ctx, _ := cuda.Open(0)
//	set, _ := kernels.New(ctx, nil) // jit.System(): NVRTC + disk cache
//	err := set.FP8GemmNT(kernels.FP8GemmNT{
//		M: m, N: n, K: k, A: a.Ptr, SA: sa.Ptr, B: b.Ptr, SB: sb.Ptr, D: d.Ptr, Out: tensor.BF16T,
//	})
//	// then ctx.Synchronize() and ctx.CopyDtoH(...)
//
// Where it sits: the GPU backends (docs/architecture.md), on cuda and
// cuda/jit.
package kernels
