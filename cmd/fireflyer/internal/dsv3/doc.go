// Package dsv3 is the DeepSeek-V3 model as Fireflyer's demo runs it: the
// published config.json and a scaled-down variant that keeps every ratio
// that matters, the noaux_tc router, RMSNorm and the YaRN-corrected rotary
// frequencies, one MoE decoder layer's FP8 weights (Weights) and its decode
// step in float32 on gemm and mla backends (Attention, RouteBatch, MLP,
// forward.go), and the float64 reference of the same step (Ref) that checks
// it.
//
// DeepSeek-V3.2 adds the lightning indexer (indexer.go: IndexerWeights,
// IndexerKeys, IndexerQueries, IndexerLogits; config fields index_n_heads,
// index_head_dim, index_topk; PublishedV32) and its float64 reference
// (indexer_ref.go, Ref.IndexerScores, Ref.TokenSparse).
//
// Upstream: deepseek-ai/DeepSeek-V3 (config.json, inference/model.py),
// deepseek-ai/DeepSeek-V3.2-Exp (inference/model.py, with the indexer's
// non-interleaved RoPE of the corrected demo).
//
// Where it sits: the application (docs/architecture.md); it imports mla for
// the one RoPE, weight absorption and naive MLA reference.
package dsv3
