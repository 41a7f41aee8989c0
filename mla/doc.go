// Package mla computes multi-head latent attention (MLA) decoding over a
// paged KV cache, as DeepSeek's FlashMLA does on Hopper GPUs, in pure Go
// with AVX-512 and AVX2 kernels.
//
// It mirrors deepseek-ai/FlashMLA's dense decode API:
//
//   - PagedCache is k_cache [num_blocks, page_block_size, h_kv, 576]: each
//     row is DeepSeek-V3's cached latent c_kv (512) then the rotated RoPE key
//     (64); V is the first HeadDimV = 512 channels of the same row. Storage
//     is BF16, FP16 or float32, and the page size is free (upstream: 64 only).
//     Pager hands out its blocks to growing sequences and keeps the
//     BlockTable and CacheSeqlens that Decode takes.
//   - Plan is get_mla_metadata: the greedy tile scheduler that cuts the
//     batch's KV blocks into parts and per-request splits, as plain data
//     (Schedule, Part, Metadata) that a CUDA backend can share.
//   - Decode is flash_mla_with_kvcache: q [b, s_q, h_q, 576] → out
//     [b, s_q, h_q, 512] and lse [b, h_q, s_q] (float32, natural log), with
//     an explicit softmax scale (DeepSeekV3Scale ≈ 0.13524 for the model;
//     the upstream default 1/√576 is not the model's), the bottom-right
//     causal mask for s_q > 1 and query head h reading KV head h/(h_q/h_kv).
//     Rows that see no key (length-0 sequences) get out = 0 and lse = +Inf;
//     slots past a sequence's length and unused block-table entries are
//     never read.
//   - Combine is the split-KV combine kernel, exported for callers that
//     merge partial attention themselves; LSEToBase2 / LSEFromBase2 convert
//     between FlashMLA's natural-log LSE and FlashInfer's base 2.
//   - NaiveMLA, AbsorbQ and UnabsorbOut are DeepSeek-V3's un-absorbed
//     attention and the weight absorption that turns it into this MQA
//     problem (inference/model.py, class MLA).
//
// Backends live in a registry: NewBackend("cpu" or "ref", BackendOptions{})
// constructs one (Default, NewCPU and NewRef directly; a nil backend in
// Decode means Default), Backends lists them for `fireflyer info`, and a
// backend package (CUDA) adds itself with Register. Decode validates once
// (NewProblem) and hands the backend the validated Problem. The cache's
// storage is tensor.Storage: the Go backends resolve it to host slices once
// per call and refuse device storage with ErrUnsupported and
// tensor.ErrNotHost. The cpu backend runs (request, KV
// head, split) units on the module's shared worker pool; each tile of 64 keys is decoded to float32 once
// and shared by all query rows of its KV head, and Q·Kᵀ and P·V are
// register-blocked GEMMs; with fewer than 4 rows per KV head (h_q = 1) it
// reads BF16 rows in place instead, as that case is bandwidth-bound. Its
// kernels are Go assembly for AVX-512 (F, BW, DQ) or AVX2+FMA with pure-Go
// twins (used elsewhere and under the noasm build tag): Default runs the best
// set this machine has, NewCPU the set its options name. The ref backend is a
// scalar float32 online softmax. Package mla/mlatest is the conformance suite
// any backend runs, with a float64 oracle and upstream's tolerances. Results
// depend only on the schedule, never on how many goroutines run it; the
// default schedule follows GOMAXPROCS (as upstream's follows the GPU's SM
// count), so pass Options.NumParts for identical bits on every machine. The
// command
// "fireflyer mla plan|check|bench" exposes the scheduler, the oracle check
// and the benchmark.
//
// The shortest useful program (one decode step of one DeepSeek-V3 layer):
//
//	cache, _ := mla.NewPagedCache(tensor.BF16T, 1024, 64, 1, mla.HeadDim)
//	pager, _ := mla.NewPager(cache, b)
//	for i := range b {
//		pager.Append(i, row[i]) // [c_kv (512) ; rotated k_pe (64)] of the new token
//	}
//	out, lse, err := mla.Decode(ctx, nil, mla.Query{Data: q, B: b, SQ: 1, HQ: 128},
//		cache, pager.BlockTable, pager.CacheSeqlens, &mla.Options{Scale: mla.DeepSeekV3Scale})
//
// Goroutines: the Go backends run on the module's shared worker pool (the
// one gemm/cpu uses), whose helper goroutines, started by the first
// parallel call, stay parked for the life of the process. Tests that check
// for leaks with go.uber.org/goleak ignore them with
// goleak.IgnoreTopFunction("github.com/fireflyer-go/fireflyer/internal/par.helperLoop").
//
// DeepSeek-V3.2 sparse attention (DSA's MLA half) mirrors FlashMLA's
// sparse API:
//
//   - The FP8 storage kind of PagedCache (DType tensor.E4M3T,
//     NewFP8PagedCache) is the V3.2 FP8 KV cache (is_fp8_kvcache): its
//     FP8Cache holds 656 bytes per token, the 512 NoPE channels as E4M3 with
//     four float32 scales (one per 128 channels) and the 64 RoPE channels as
//     BF16. QuantizeFP8Row writes a record with V3.2's act_quant recipe
//     (UE8M0 power-of-two scales, what SetRow and Pager use) or the recipes
//     of FlashMLA's tests; DequantizeFP8Row reads one. Decode accepts the
//     kind: the Go backends dequantize each key row as they gather it. The newer per-block layout of
//     upstream's d_qk = 512 model (448 NoPE + 64 RoPE with UE8M0 scales per
//     64 channels) is not implemented: it needs a 512-wide query and its
//     model is not documented upstream.
//   - SparseDecode is flash_mla_with_kvcache with indices [b, s_q, topk]
//     (−1 = none; index = block·page + slot), topk_length, attn_sink and the
//     extra cache; SparsePrefill is flash_mla_sparse_fwd over float32 KV rows
//     with out, max_logits and lse. The sink enters only the softmax
//     denominator; a row with no valid index gets out = 0 and lse = +Inf.
//     Their backends ("ref", "cpu"; NewSparseBackend) validate nothing:
//     the front functions do, once, and reject a decode index other than
//     −1 outside the cache with ErrIndex.
//   - TopKIndices (and TopKRow) selects the top-k columns of the
//     indexer's logits rows (gemm.MQALogits, gemm.PagedMQALogits) in the
//     index layout above: larger logit first, equal logits by lower
//     column, −Inf and NaN never selected, −1 padding; a radix select, not
//     a sort.
//
// Where it sits: a compute package (docs/architecture.md) with its two
// backends, ref and cpu. It imports tensor and the basement only; its
// conformance suite is mla/mlatest, its oracle mla/oracle.
package mla
