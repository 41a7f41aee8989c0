// Package ref is the reference gemm backend: the literal definition of
// DeepGEMM's FP8 GEMM, one output element at a time, with no blocking and no
// SIMD, for any shape. It is the oracle the faster backends are checked
// against and the definition the conformance suite (gemm/gemmtest) pins.
//
// For every output element it computes, for each 128-wide K block kb, the
// FP8 partial P = Σ a·b in float32 (products are exact), then
// acc = acc + float32(sa·sb)·P in float32 (every step rounded, no fused
// multiply-add), and finally D = bf16_rn(C + acc) or float32(C + acc)
// (DeepGEMM deep_gemm/include/deep_gemm/fp8_gemm.cuh, SM90 1D2D kernel).
//
// The FP8×FP4 calls (gemm.FP4Backend) follow the same pattern over blocks of
// min(128, ScaleK) K-elements, on which both scales are constant: the exact
// E4M3×E2M1 products summed in float32, promoted with float32(sa·sb).
//
// Where it sits: the reference backend of package gemm (docs/architecture.md);
// it imports gemm and tensor only and passes gemm/gemmtest.
package ref
