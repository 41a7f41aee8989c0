package main

import "strings"

// mlaAVX512 lists the kernels of mla_avx512_amd64.s, the AVX-512 kernels of
// the attention path, in file order: the GEMM micro-kernels (gemm4.go,
// attn.go), the streaming kernels (vec.go: BF16/F16 widening, dot, axpy,
// scal, max), exp2 and the fused BF16 QK/PV kernels (attn.go).
var mlaAVX512 = []string{"kern4x64", "kern8x16", "cvtBF16x16", "cvtF16x16", "dotx16", "axpyx16", "scalx16",
	"exp2Subx16", "qkBF16x16", "pvBF16x64", "qkBF16x16x2", "pvBF16x64x2", "pvBF16x128", "maxIntox16"}

// mlaAVX2 lists the kernels of mla_avx2_amd64.s, the AVX2+FMA twins.
var mlaAVX2 = []string{"kern4x16avx2", "cvtBF16x8avx2", "cvtF16x8avx2", "dotx8avx2", "axpyx8avx2", "scalx8avx2",
	"exp2Subx8avx2", "qkBF16x8avx2", "pvBF16x32avx2", "pvBF16x64avx2", "maxIntox8avx2", "qkBF16uavx2"}

// mlaFile returns the body of an attention-kernel file: the kernels of
// width v named in names, one blank line apart.
func mlaFile(v width, names []string, kern4 string, labels map[string]string) string {
	kernels := vecKernels(v, labels)
	for name, k := range attnKernels(v) {
		kernels[name] = k
	}
	kernels[names[0]] = kern4
	body := make([]string, len(names))
	for i, name := range names {
		k, ok := kernels[name]
		if !ok {
			panic("gen: no kernel " + name)
		}
		body[i] = k
	}
	return strings.Join(body, "\n\n") + "\n"
}
