// Package cuda is Fireflyer's door to NVIDIA GPUs: device discovery through
// NVML, and the CUDA driver API and NVRTC loaded at run time, so that
// kernels can be compiled and launched with no CUDA toolkit, no cgo and no
// GPU needed to build.
//
// # Layers
//
//   - Devices lists GPUs through NVML: libnvidia-ml.so.1 opened with the
//     same dlopen (no cgo, no NVML header, so a plain build compiles no C);
//     built with -tags nvml and cgo it binds NVML through
//     github.com/NVIDIA/go-nvml instead.
//   - LoadDriver / SystemDriver open libcuda.so.1 through an Opener
//     (SystemOpener uses github.com/ebitengine/purego's dlopen) and resolve
//     the exported, versioned entry points (cuMemAlloc_v2, cuMemcpyHtoD_v2,
//     cuDevicePrimaryCtxRelease_v2, ...). LoadNVRTC / SystemNVRTC do the same
//     for libnvrtc.so.13, .12 or plain libnvrtc.so.
//   - Driver.Open (or Open) retains a device's primary context and drives it
//     from one goroutine locked to its OS thread; every Context method is
//     queued to that goroutine. Memory (Alloc, CopyHtoD, CopyDtoH), streams,
//     events, modules (LoadModule, Module.Function) and launches (Launch,
//     with cluster dimensions through cuLaunchKernelEx) hang off it; TMA
//     descriptors come from Driver.EncodeTiled.
//   - Kernel arguments are packed by Args in declaration order.
//
// Every non-zero status becomes an *Error carrying the entry point and the
// driver's name and message for the status ("cuda: cuMemAlloc_v2:
// CUDA_ERROR_OUT_OF_MEMORY (out of memory)"); it matches ErrOutOfMemory,
// ErrNotSupported and ErrUnavailable with errors.Is. Without a driver,
// without a device or with a driver too old, loading fails with an error
// wrapping ErrUnavailable that says why; nothing crashes.
//
// Subpackages: jit (NVRTC compilation with DeepGEMM's kind of disk cache),
// kernels (the embedded FP8 GEMM and MLA decode kernels) and cudatest (a
// fake driver and NVRTC for tests, and RequireGPU).
//
// Upstream: the CUDA driver API (cuda.h) and NVRTC (nvrtc.h) as
// deepseek-ai/DeepGEMM uses them in its run-time JIT (csrc/jit);
// NVML (nvml.h, as NVIDIA/go-nvml binds it) for discovery.
//
// The shortest useful program:
//
//	ctx, err := cuda.Open(0)
//	if err != nil {
//		log.Fatal(err) // e.g. "cuda: unavailable: cannot load the CUDA driver (libcuda.so.1: ...)"
//	}
//	defer ctx.Close()
//	buf, _ := ctx.Upload([]byte{1, 2, 3})
//	defer buf.Free()
//	fmt.Println(ctx.Info().Name, ctx.Info().Arch()) // NVIDIA H200 sm_90a
//
// Where it sits: a compute package (docs/architecture.md), the door to GPUs;
// cuda/jit compiles kernels through it and cuda/kernels holds the GPU
// backends, cuda/cudatest a fake driver for tests.
package cuda
