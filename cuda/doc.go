// Package cuda discovers NVIDIA GPUs (go-nvml) and will load the CUDA driver and NVRTC at run time for JIT kernels.
//
// Upstream: NVIDIA/go-nvml; deepseek-ai/DeepGEMM's JIT.
//
// This package is not built yet; this file says what it will hold.
package cuda
