// Package ep implements MoE expert-parallel dispatch and combine, normal and low-latency, with FP8 payloads, over in-process, TCP/Unix and RDMA transports.
//
// Upstream: deepseek-ai/DeepEP, deep_ep.Buffer.
//
// This package is not built yet; this file says what it will hold.
package ep
