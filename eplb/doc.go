// Package eplb plans expert replication and placement for MoE inference (hierarchical and global policies).
//
// Upstream: deepseek-ai/EPLB, eplb.rebalance_experts.
//
// This package is not built yet; this file says what it will hold.
package eplb
