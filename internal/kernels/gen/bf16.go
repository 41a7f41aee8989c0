package main

// bf16AVX2 is the body of bf16_amd64.s: the AVX2 BF16 combine kernels of
// package ep (axpy into float32, float32 to BF16, fused row sums), kept as
// text like mlaAVX512.
const bf16AVX2 = `// func axpyBF16AVX2(acc *float32, w float32, src *tensor.BF16, n int)  (n a multiple of 16)
TEXT ·axpyBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ acc+0(FP), DI
	VBROADCASTSS w+8(FP), Y2
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
axpy_loop:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD $16, Y0, Y0
	VPSLLD $16, Y1, Y1
	VMULPS Y2, Y0, Y0
	VMULPS Y2, Y1, Y1
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ axpy_loop
	VZEROUPPER
	RET

// func toBF16AVX2(dst *tensor.BF16, src *float32, n int)  (n a multiple of 16)
// Round to nearest even as torch: u + 0x7FFF + ((u>>16)&1), then >> 16;
// NaN becomes 0x7FC0.
TEXT ·toBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $1, AX
	MOVQ AX, X8
	VPBROADCASTD X8, Y8   // ones
	MOVL $0x7FFF, AX
	MOVQ AX, X9
	VPBROADCASTD X9, Y9   // 0x7FFF
	MOVL $0x7FC0, AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10 // NaN
to_loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VPSRLD $16, Y0, Y2
	VPSRLD $16, Y1, Y3
	VPAND Y8, Y2, Y2
	VPAND Y8, Y3, Y3
	VPADDD Y9, Y2, Y2
	VPADDD Y9, Y3, Y3
	VPADDD Y0, Y2, Y2
	VPADDD Y1, Y3, Y3
	VPSRLD $16, Y2, Y2
	VPSRLD $16, Y3, Y3
	VCMPPS $3, Y0, Y0, Y4
	VCMPPS $3, Y1, Y1, Y5
	VBLENDVPS Y4, Y10, Y2, Y2
	VBLENDVPS Y5, Y10, Y3, Y3
	VPACKUSDW Y3, Y2, Y6
	VPERMQ $0xD8, Y6, Y6
	VMOVDQU Y6, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ to_loop
	VZEROUPPER
	RET

// func sumBF16AVX2(dst *tensor.BF16, rows *[]tensor.BF16, nrows int, n int)
// dst[i] = bf16(Σ_r float32(rows[r][i])), summed in row order; nrows ≥ 1,
// n a multiple of 16.
TEXT ·sumBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ rows+8(FP), SI
	MOVQ nrows+16(FP), R9
	MOVQ n+24(FP), CX
	MOVL $1, AX
	MOVQ AX, X8
	VPBROADCASTD X8, Y8   // ones
	MOVL $0x7FFF, AX
	MOVQ AX, X9
	VPBROADCASTD X9, Y9   // 0x7FFF
	MOVL $0x7FC0, AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10 // NaN
	XORQ DX, DX           // byte offset into the rows
sum_loop:
	MOVQ (SI), AX
	VPMOVZXWD (AX)(DX*1), Y0
	VPMOVZXWD 16(AX)(DX*1), Y1
	VPSLLD $16, Y0, Y0
	VPSLLD $16, Y1, Y1
	MOVQ SI, R10
	MOVQ R9, R11
	DECQ R11
	JZ sum_convert
sum_inner:
	ADDQ $24, R10
	MOVQ (R10), AX
	VPMOVZXWD (AX)(DX*1), Y2
	VPMOVZXWD 16(AX)(DX*1), Y3
	VPSLLD $16, Y2, Y2
	VPSLLD $16, Y3, Y3
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	DECQ R11
	JNZ sum_inner
sum_convert:
	VPSRLD $16, Y0, Y2
	VPSRLD $16, Y1, Y3
	VPAND Y8, Y2, Y2
	VPAND Y8, Y3, Y3
	VPADDD Y9, Y2, Y2
	VPADDD Y9, Y3, Y3
	VPADDD Y0, Y2, Y2
	VPADDD Y1, Y3, Y3
	VPSRLD $16, Y2, Y2
	VPSRLD $16, Y3, Y3
	VCMPPS $3, Y0, Y0, Y4
	VCMPPS $3, Y1, Y1, Y5
	VBLENDVPS Y4, Y10, Y2, Y2
	VBLENDVPS Y5, Y10, Y3, Y3
	VPACKUSDW Y3, Y2, Y6
	VPERMQ $0xD8, Y6, Y6
	VMOVDQU Y6, (DI)(DX*1)
	ADDQ $32, DX
	SUBQ $16, CX
	JNZ sum_loop
	VZEROUPPER
	RET
`
