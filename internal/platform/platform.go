// Package platform probes what this machine offers the SDK's backends: CPU
// features for the kernels and whether io_uring can be used. Every probe
// answers with a reason instead of failing. It is the one place that reads
// CPU features; internal/kernels selects its kernel sets from CPU().
//
// Where it sits: the basement (docs/architecture.md); it imports no other
// package of the module.
package platform

import (
	"runtime"

	"golang.org/x/sys/cpu"
)

// CPUFeatures are the instruction-set extensions the CPU kernels select on.
type CPUFeatures struct {
	Arch       string `json:"arch"`       // runtime.GOARCH
	AVX        bool   `json:"avx"`        // 256-bit float SIMD, VEX encoding
	AVX2       bool   `json:"avx2"`       // 256-bit integer and float SIMD
	FMA        bool   `json:"fma"`        // fused multiply-add (FMA3)
	F16C       bool   `json:"f16c"`       // VCVTPH2PS/VCVTPS2PH (FP16 conversion)
	AVX512F    bool   `json:"avx512f"`    // 512-bit foundation
	AVX512BW   bool   `json:"avx512bw"`   // byte/word ops (FP8 and BF16 unpacking)
	AVX512DQ   bool   `json:"avx512dq"`   // doubleword/quadword ops (VEXTRACTF32X8)
	AVX512VL   bool   `json:"avx512vl"`   // 128/256-bit forms of AVX-512 ops
	AVX512BF16 bool   `json:"avx512bf16"` // VDPBF16PS, VCVTNEPS2BF16
	NEON       bool   `json:"neon"`       // arm64 Advanced SIMD
}

// CPU returns the features of the running CPU (through golang.org/x/sys/cpu).
func CPU() CPUFeatures {
	return CPUFeatures{
		Arch:       runtime.GOARCH,
		AVX:        cpu.X86.HasAVX,
		AVX2:       cpu.X86.HasAVX2,
		FMA:        cpu.X86.HasFMA,
		F16C:       cpu.X86.HasF16C,
		AVX512F:    cpu.X86.HasAVX512F,
		AVX512BW:   cpu.X86.HasAVX512BW,
		AVX512DQ:   cpu.X86.HasAVX512DQ,
		AVX512VL:   cpu.X86.HasAVX512VL,
		AVX512BF16: cpu.X86.HasAVX512BF16,
		NEON:       cpu.ARM64.HasASIMD,
	}
}

// Names lists the present features by name, in a fixed order.
func (f CPUFeatures) Names() []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(f.AVX2, "AVX2")
	add(f.FMA, "FMA")
	add(f.F16C, "F16C")
	add(f.AVX512F, "AVX-512F")
	add(f.AVX512BW, "AVX-512BW")
	add(f.AVX512DQ, "AVX-512DQ")
	add(f.AVX512VL, "AVX-512VL")
	add(f.AVX512BF16, "AVX-512BF16")
	add(f.NEON, "NEON")
	return out
}
