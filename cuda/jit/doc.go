// Package jit compiles CUDA C++ kernels at run time with NVRTC and keeps
// the results in a disk cache, as DeepGEMM's JIT does, so that no CUDA
// toolkit is needed to build Fireflyer and each kernel instance is compiled
// once per machine.
//
// A Request names a self-contained source, a kernel Instance (the
// __global__ template and its arguments, e.g. "fp8_gemm_nt<64, 64, 1>",
// which NVRTC instantiates as a name expression), the target architecture
// (sm_90a on Hopper) and extra flags. Key hashes all of them with the NVRTC
// version; the cache file kernel.<name>.<key>.bin holds the lowered
// (mangled) name and the CUBIN behind a checksum. Files are written to a
// temporary name, synced and renamed, so concurrent writers in any number
// of processes never expose a partial file; a corrupt file is recompiled.
// Within a process, concurrent requests for one key compile once.
//
// Environment (mirroring DeepGEMM's DG_JIT_CACHE_DIR and
// DG_JIT_PRINT_COMPILER_COMMAND):
//
//	FIREFLYER_JIT_CACHE_DIR=/path          cache directory (default <user cache dir>/fireflyer/jit)
//	FIREFLYER_JIT_PRINT_COMPILER_COMMAND=1 print each compilation to stderr
//
// Upstream: deepseek-ai/DeepGEMM csrc/jit/compiler.hpp (NVRTCCompiler,
// cache layout, atomic rename) and csrc/jit/kernel_runtime.hpp.
//
// The shortest useful program:
//
//	comp, err := jit.System() // ErrUnavailable without NVRTC
//	if err != nil {
//		log.Fatal(err)
//	}
//	k, err := comp.Compile(jit.Request{
//		Source:   jit.Source{Name: "k.cu", Code: src},
//		Instance: jit.Instance{Name: "scale", Args: []string{"4"}},
//		Arch:     "sm_90a",
//	})
//	// k.Image is a CUBIN for ctx.LoadModule; k.Lowered names the kernel.
//	// comp.Load(ctx, req) does both and caches the function per context.
//
// Where it sits: on top of package cuda (docs/architecture.md); it imports
// cuda only.
package jit
