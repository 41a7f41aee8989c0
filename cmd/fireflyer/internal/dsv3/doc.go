// Package dsv3 holds the DeepSeek-V3 model facts that Fireflyer's demo needs:
// the published config.json and a scaled-down variant that keeps every ratio
// that matters, the noaux_tc router, RMSNorm and RoPE, the checkpoint's tensor
// names and shapes, and a float64 reference of one MoE decoder layer's decode
// step used to check the fast path.
//
// Upstream: deepseek-ai/DeepSeek-V3 (config.json, inference/model.py).
//
// Where it sits: the application (docs/architecture.md); it imports mla for
// the one RoPE, weight absorption and naive MLA reference.
package dsv3
