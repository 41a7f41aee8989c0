// Package mla computes MLA decode attention over a paged KV cache with split-KV and LSE combine, as FlashMLA does.
//
// Upstream: deepseek-ai/FlashMLA, flash_mla_with_kvcache.
//
// This package is not built yet; this file says what it will hold.
package mla
