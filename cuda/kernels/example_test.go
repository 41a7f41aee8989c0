package kernels_test

import (
	"fmt"

	"github.com/fireflyer-go/fireflyer/cuda/kernels"
)

// ExampleInstances lists the kernel instances a Set compiles (what
// Set.Warmup loads and the GPU check compiles first).
func ExampleInstances() {
	for _, r := range kernels.Instances() {
		fmt.Println(r.Source.Name, r.Instance)
	}
	fmt.Println(kernels.MLAWorkspaceBytes(128, 1, 16, 2), "workspace bytes at b=128, h_q=16, 2 splits")
	// Output:
	// fp8_gemm.cu fp8_gemm_nt<64, 64, 1>
	// fp8_gemm.cu fp8_gemm_nt<64, 64, 0>
	// mla_decode.cu mla_decode_partial<576, 512, 64>
	// mla_decode.cu mla_decode_combine<512>
	// 8404992 workspace bytes at b=128, h_q=16, 2 splits
}
