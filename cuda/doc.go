// Package cuda is Fireflyer's door to NVIDIA GPUs: device discovery through
// NVML (github.com/NVIDIA/go-nvml) today, and the CUDA driver and NVRTC loaded
// at run time for JIT-compiled gemm and mla kernels (the real backends).
//
// Discovery needs cgo (go-nvml is a cgo binding that loads libnvidia-ml.so.1
// at run time). Without cgo, without the library, or without a GPU, Devices
// returns an error wrapping ErrUnavailable that says why; it never crashes.
// go-nvml terminates the process if it is called after a failed Init, so this
// package initialises NVML once and never calls it again after a failure.
//
// Upstream: NVIDIA/go-nvml (nvml.Init, DeviceGetHandleByIndex, ...);
// deepseek-ai/DeepGEMM's run-time JIT is the model for the kernel backends.
//
// The shortest useful program:
//
//	gpus, err := cuda.Devices()
//	if err != nil {
//		fmt.Println("no GPU:", err) // e.g. "cuda: unavailable: libnvidia-ml.so.1 not found"
//	}
//	for _, g := range gpus {
//		fmt.Printf("%d %s sm_%d%d %d MiB\n", g.Index, g.Name, g.Major, g.Minor, g.MemoryTotal>>20)
//	}
package cuda
