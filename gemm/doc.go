// Package gemm computes FP8 E4M3 GEMMs with DeepSeek's fine-grained block
// scales — dense, grouped contiguous (MoE prefill) and grouped masked (MoE
// decode) — and a plain BF16 GEMM, as DeepGEMM does on Hopper and
// Blackwell GPUs.
//
// Upstream: deepseek-ai/DeepGEMM (fp8_gemm_nt, m_grouped_fp8_gemm_nt_contiguous,
// m_grouped_fp8_gemm_nt_masked, bf16_gemm_nt; quantizers from
// deep_gemm/utils/math.py). All calls use the NT layout: A [M,K] and B
// [N,K], both K-major, compute D = C + A·Bᵀ.
//
// The function every backend computes, for each output element: the sum over
// 128-wide K blocks of (A's scale × B's scale × that block's FP8 dot
// product), accumulated in float32, optionally added to C and written as
// BF16 (round-to-nearest-even) or float32. A carries one scale per row and
// 128 K-elements (1×128, per token), B one per 128×128 block (the
// weight_scale_inv layout of DeepSeek-V3 checkpoints); scales are float32 or
// UE8M0 power-of-two bytes.
//
// Loose ends of upstream are defined here: rows with mIndices −1 and rows ≥
// maskedM are left untouched (Out.ZeroUnused zeroes them); M = 0 or N = 0 is
// a no-op; K = 0 gives D = C (or 0); K and N need not be multiples of 128;
// NaN in gives NaN out. Bad arguments give an *ArgError naming the argument
// and wrapping ErrShape, ErrScales, ErrIndices or ErrUnsupported.
//
// Backends implement the small Backend interface: gemm/ref is the literal
// definition, gemm/cpu the fast packed AVX-512/AVX2 one; gemm/gemmtest is
// the conformance suite both pass. The shortest useful program:
//
//	a, _ := gemm.QuantizePerToken(x, m, k, gemm.QuantOptions{}) // activations [m,k]
//	b, _ := gemm.QuantizePerBlock(w, n, k, gemm.QuantOptions{}) // weights [n,k]
//	d := &gemm.Out{Rows: m, Cols: n, BF16: make([]tensor.BF16, m*n)}
//	err := cpu.New().GemmNT(ctx, a, b, d) // d = a·bᵀ
//
// Helpers for CUDA-style layouts (PackUE8M0, MNMajorTMAAligned,
// TMAAlignedSize) produce what DeepGEMM's kernels read; the CPU backends take
// the logical K-major scale layout described on FP8Matrix.
//
// Where it sits: a compute package (docs/architecture.md). It imports tensor and
// the basement only; its backends are gemm/ref (the spec) and gemm/cpu, its
// conformance suite gemm/gemmtest with the oracles of gemm/oracle.
package gemm
