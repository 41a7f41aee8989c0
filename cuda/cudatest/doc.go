// Package cudatest provides a fake CUDA driver and NVRTC for tests on
// machines without a GPU. The fake is a real shared-library stand-in: its
// entry points are C-callable function pointers (purego callbacks), so
// cuda.LoadDriver and cuda.LoadNVRTC resolve and call them exactly as they
// call libcuda.so.1 and libnvrtc.so; only the work behind them is simulated
// in Go (device memory is host memory, kernels are Go functions you
// register, compilation echoes the source).
//
// purego callbacks are process-wide and never freed, so one set is created
// per process and dispatches to the most recently created Fake: create one
// Fake per test and do not run such tests in parallel.
//
// Where it sits: a check (docs/architecture.md); only tests import it.
package cudatest
