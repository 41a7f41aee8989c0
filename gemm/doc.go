// Package gemm computes FP8 E4M3 GEMMs with 1×128 and 128×128 block scales, dense and grouped (contiguous and masked), as DeepGEMM does.
//
// Upstream: deepseek-ai/DeepGEMM, deep_gemm.fp8_gemm_nt.
//
// This package is not built yet; this file says what it will hold.
package gemm
