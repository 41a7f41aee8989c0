// Package demo is `fireflyer demo`: one decode step of one DeepSeek-V3 MoE
// layer through every Fireflyer package, from a checkpoint on disk, checked
// against a float64 reference.
//
// The step: generate (or read) the layer's checkpoint through fs; fill a
// paged MLA cache with each sequence's prefix; run the absorbed MLA decode
// (mla) with FP8 projections (gemm); route with DeepSeek-V3's noaux_tc
// router; place experts with EPLB (eplb) from loads seen on a warm-up batch;
// low-latency FP8 dispatch to R expert-parallel ranks (ep); masked grouped
// FP8 expert GEMMs plus the shared expert (gemm); low-latency combine (ep);
// then a DualPipe simulation of a 16-stage pipeline (pipeline) priced with
// this run's forward time.
//
// # The check
//
// The reference (dsv3.Ref) recomputes every token's layer output in
// float64 on one rank from the same dequantized weights, inputs and cache
// prefix, with the fast path's expert choice. The check line compares the
// layer's output: calc_diff usually shows 2.5e-4 … 3.2e-4 at the defaults
// (4e-4 with very short prefixes), under Threshold 0.002. Most of it comes
// from the MoE half (its own calc_diff is about 1.1e-3: two chained FP8
// GEMMs with per-token re-quantized activations, after an FP8 dispatch and
// before a BF16 combine); the attention half's is about 3.5e-4 and the
// residual stream, exact in both, dilutes both. Because that dilution would
// let a wrong stage pass, the check also requires each half under
// PartThreshold, the router's expert choice to be exactly noaux_tc's on the
// step's own scores, and those scores within RouterScoreTolerance of
// float64 (see Result.OK).
//
// # DeepSeek-V3.2 (Options.Model "v3.2", `fireflyer demo --model v3.2`)
//
// The layer gains DeepSeek-V3.2's lightning indexer and its attention turns
// sparse: the MLA cache holds FlashMLA's 656-byte FP8 records
// (mla.NewFP8PagedCache) and the indexer's keys sit in DeepGEMM's paged
// indexer cache (gemm.IndexerCache, 132 bytes a token, the same block
// table), both filled as the prefix tokens are appended. The step runs the
// projections, the indexer's (wq_b on MLA's query latent, wk, k_norm, the
// non-interleaved RoPE, the 128-point Hadamard rotation, act_quant with
// UE8M0 scales, weights_proj), its logits over the cache
// (gemm.PagedMQALogits), the top-index_topk keys (mla.TopKIndices: larger
// logit first, ties to the lower position, −1 padding) and sparse MLA
// decode over them (mla.SparseDecode), then the MoE half as for V3. The
// default prefix is 2·index_topk, so that nearly every context is longer
// than top-k (the Indexer line says how many are).
//
// The reference recomputes every context key of the indexer from the
// prefix tokens' hidden states in float64 (act_quant included, as the model
// quantizes), scores them, and attends densely over the step's chosen keys
// with every other logit at −Inf (dsv3.Ref.TokenSparse). The check then
// also requires the indexer's logits under IndexerThreshold, the chosen
// keys to be exactly the top-k of the step's own logits, and every key on
// the right side of the float64 top-k cut unless within the near-tie band
// TopKBand (IndexerCheck).
//
// Where it sits: the application (docs/architecture.md). Run is a list of
// stage functions over one state (stages.go); the stage table it returns is
// made of the rows that list declares.
package demo
