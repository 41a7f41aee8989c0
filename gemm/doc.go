// Package gemm computes FP8 E4M3 GEMMs with DeepSeek's fine-grained block
// scales — dense, grouped contiguous (MoE prefill) and grouped masked (MoE
// decode) — and a plain BF16 GEMM, as DeepGEMM does on Hopper and
// Blackwell GPUs.
//
// Upstream: deepseek-ai/DeepGEMM (fp8_gemm_nt, m_grouped_fp8_gemm_nt_contiguous,
// m_grouped_fp8_gemm_nt_masked, bf16_gemm_nt, the fp8_fp4 family; for
// training fp8_gemm_{nn,tn,tt}, bf16_gemm_{nn,tn,tt},
// k_grouped_fp8_gemm_{tn,nt}_contiguous, k_grouped_bf16_gemm_tn_contiguous,
// m_grouped_bf16_gemm_nt_{contiguous,masked}; quantizers from
// deep_gemm/utils/math.py). Every call computes D = C + A·Bᵀ on the logical
// A [M,K] and B [N,K]; the inference calls take both K-major (the NT
// layout), the training calls also MN-major ones.
//
// The function every backend computes, for each output element: the sum over
// 128-wide K blocks of (A's scale × B's scale × that block's FP8 dot
// product), accumulated in float32, optionally added to C and written as
// BF16 (round-to-nearest-even) or float32. A carries one scale per row and
// 128 K-elements (1×128, per token), B one per 128×128 block (the
// weight_scale_inv layout of DeepSeek-V3 checkpoints); scales are float32 or
// UE8M0 power-of-two bytes.
//
// The FP8×FP4 calls (FP8FP4GemmNT, FP8FP4GroupedContiguousNT,
// FP8FP4GroupedMaskedNT: DeepGEMM's fp8_fp4_gemm_nt and
// m_grouped_fp8_fp4_gemm_nt_{contiguous,masked}, its SM100 FP4 path) take
// the same FP8 A and a tensor.FP4Matrix B: packed E2M1 weights with one
// scale per row and 32 (DeepGEMM's FP4 recipe) or 128 K-elements, made by
// tensor.QuantizePerTokenFP4. Every element's scales apply inside its
// product, D = C + Σ_k (a·sa)(b·sb), accumulated in float32; upstream's gate
// against the unquantized product is 0.01 instead of 0.001. They live on
// the optional FP4Backend interface, which gemm/ref and gemm/cpu implement.
//
// Loose ends of upstream are defined here: rows with mIndices −1 and rows ≥
// maskedM are left untouched (Out.ZeroUnused zeroes them); M = 0 or N = 0 is
// a no-op; K = 0 gives D = C (or 0); K and N need not be multiples of 128;
// NaN in gives NaN out. Bad arguments give an *ArgError naming the argument
// and wrapping ErrShape, ErrScales, ErrIndices or ErrUnsupported.
//
// The operands are tensor.FP8Matrix, the one blocked FP8 type of the module
// (tensor's quantizers make them; ep's FP8 dispatch output and a checkpoint's
// weight + weight_scale_inv pair already are one), and BF16Matrix; their
// elements and Out's live in tensor.Storage: host slices (tensor.Host), or
// device buffers for a backend that keeps data on a GPU.
//
// The front functions FP8GemmNT, GroupedContiguousNT, GroupedMaskedNT and
// BF16GemmNT validate the arguments once, check them against the backend's
// Caps and call the small Backend interface. gemm/ref is the literal
// definition, gemm/cpu the fast packed AVX-512/AVX2 one (both compute on the
// host and refuse other storage with tensor.ErrNotHost); gemm/gemmtest is
// the conformance suite both pass. Backends register by name: NewBackend
// constructs one, Backends lists them. The shortest useful program:
//
//	a, _ := tensor.QuantizePerToken(x, m, k, tensor.QuantOptions{}) // activations [m,k]
//	b, _ := tensor.QuantizePerBlock(w, n, k, tensor.QuantOptions{}) // weights [n,k]
//	y := make([]tensor.BF16, m*n)
//	d := &gemm.Out{Rows: m, Cols: n, BF16: tensor.HostOf(y)}
//	err := gemm.FP8GemmNT(ctx, cpu.New(cpu.Options{}), a, b, d) // y = a·bᵀ
//
// Training (DeepGEMM's backward-pass calls) goes through the optional
// TrainingBackend interface, which gemm/ref and gemm/cpu implement:
// FP8GemmNN, FP8GemmTN and FP8GemmTT (and their BF16 twins) take MN-major
// operands (tensor.FP8MNMatrix, BF16MNMatrix: the logical [MN, K] matrix
// stored [K, MN], scales K-block-major) for the data gradient dX = dY·W and
// the weight gradient dW = dYᵀ·X; KGroupedFP8GemmTNContiguous (and the
// K-major KGroupedFP8GemmNTContiguous, KGroupedBF16GemmTNContiguous)
// computes every expert's weight gradient over its own run of tokens (the
// ks list, multiples of 128) in one call; MGroupedBF16GemmNTContiguous and
// MGroupedBF16GemmNTMasked are the grouped BF16 forward calls. A 128×128
// block-scaled weight is its own MN-major operand (same bytes, same
// scales), so the backward pass needs no requantization of W;
// tensor.QuantizePerChannel quantizes dY and X for the k-grouped wgrad.
// examples/moe-backward runs one MoE expert layer's forward and backward
// passes this way and checks them against float64.
//
// Helpers for CUDA-style layouts (PackUE8M0, MNMajorTMAAligned,
// TMAAlignedSize) produce what DeepGEMM's kernels read; the CPU backends take
// the logical K-major scale layout described on tensor.FP8Matrix.
//
// The DeepSeek-V3.2 lightning indexer's kernels are here too, as an
// optional interface IndexerBackend (gemm/ref and gemm/cpu implement it):
// MQALogits is DeepGEMM's fp8_mqa_logits (prefill: FP8 q [M, H, d] without
// scale against FP8 keys [N, d] with one float32 scale each, per-row key
// ranges [ks, ke)), PagedMQALogits is fp8_paged_mqa_logits (decode over
// the paged IndexerCache, 1-D or 2-D context_lens, a block_table), both
// logits = k_scale · Σ_h w_h · ReLU(q_h·k) with clean_logits giving exactly
// −Inf outside the ranges; PagedMQALogitsMetadata is
// get_paged_mqa_logits_metadata, which the host backends ignore.
// IndexerCache.WriteTokens quantizes float32 keys into the cache through a
// block_table row; mla.TopKIndices turns the logits into sparse attention
// indices.
//
// Where it sits: a compute package (docs/architecture.md). It imports tensor and
// the basement only; its backends are gemm/ref (the spec) and gemm/cpu, its
// conformance suite gemm/gemmtest with the oracles of gemm/oracle.
package gemm
