//go:build arm64 && !noasm

#include "textflag.h"

// The NEON twins of the BF16 combine kernels of ep (bf16.go): they give the
// generic kernels' results bit for bit. Instructions the Go assembler lacks
// are WORD encodings with the mnemonic beside them.

// func axpyBF16NEON(acc *float32, w float32, src *tensor.BF16, n int)   n multiple of 16
// acc[i] += float32(w·float32(src[i])): the product is rounded, then added.
TEXT ·axpyBF16NEON(SB), NOSPLIT, $0-32
	MOVD  acc+0(FP), R0
	FMOVS w+8(FP), F31
	MOVD  src+16(FP), R1
	MOVD  n+24(FP), R2
	VDUP  V31.S[0], V31.S4
	LSR   $4, R2, R2
	CBZ   R2, axbdone
axbloop:
	VLD1.P 32(R1), [V0.H8, V1.H8]
	WORD $0x2e613802 // SHLL V2.4S, V0.4H, #16
	WORD $0x6e613803 // SHLL2 V3.4S, V0.8H, #16
	WORD $0x2e613824 // SHLL V4.4S, V1.4H, #16
	WORD $0x6e613825 // SHLL2 V5.4S, V1.8H, #16
	WORD $0x6e3fdc42 // FMUL V2.4S, V2.4S, V31.4S
	WORD $0x6e3fdc63 // FMUL V3.4S, V3.4S, V31.4S
	WORD $0x6e3fdc84 // FMUL V4.4S, V4.4S, V31.4S
	WORD $0x6e3fdca5 // FMUL V5.4S, V5.4S, V31.4S
	VLD1  (R0), [V6.S4, V7.S4, V8.S4, V9.S4]
	WORD $0x4e22d4c6 // FADD V6.4S, V6.4S, V2.4S
	WORD $0x4e23d4e7 // FADD V7.4S, V7.4S, V3.4S
	WORD $0x4e24d508 // FADD V8.4S, V8.4S, V4.4S
	WORD $0x4e25d529 // FADD V9.4S, V9.4S, V5.4S
	VST1.P [V6.S4, V7.S4, V8.S4, V9.S4], 64(R0)
	SUBS  $1, R2, R2
	BNE   axbloop
axbdone:
	RET

// func toBF16NEON(dst *tensor.BF16, src *float32, n int)   n multiple of 16
// Round to nearest even on the bits (u + 0x7FFF + (u>>16 & 1)) >> 16, NaN
// (a lane unequal to itself) to 0x7FC0.
TEXT ·toBF16NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	MOVW $0x7FFF, R9
	VDUP R9, V28.S4
	MOVW $1, R9
	VDUP R9, V29.S4
	MOVW $0x7FC00000, R9
	VDUP R9, V30.S4
	LSR  $3, R2, R2
	CBZ  R2, tbdone
tbloop:
	VLD1.P 32(R1), [V0.S4, V1.S4]
	VUSHR $16, V0.S4, V2.S4
	VAND  V29.B16, V2.B16, V2.B16
	VADD  V28.S4, V2.S4, V2.S4
	VADD  V0.S4, V2.S4, V2.S4
	WORD $0x4e20e404 // FCMEQ V4.4S, V0.4S, V0.4S
	WORD $0x6e7e1c44 // BSL V4.16B, V2.16B, V30.16B
	VUSHR $16, V1.S4, V3.S4
	VAND  V29.B16, V3.B16, V3.B16
	VADD  V28.S4, V3.S4, V3.S4
	VADD  V1.S4, V3.S4, V3.S4
	WORD $0x4e21e425 // FCMEQ V5.4S, V1.4S, V1.4S
	WORD $0x6e7e1c65 // BSL V5.16B, V3.16B, V30.16B
	WORD $0x0f108486 // SHRN V6.4H, V4.4S, #16
	WORD $0x4f1084a6 // SHRN2 V6.8H, V5.4S, #16
	VST1.P [V6.H8], 16(R0)
	SUBS $1, R2, R2
	BNE  tbloop
tbdone:
	RET

// func sumBF16NEON(dst *tensor.BF16, rows *[]tensor.BF16, nrows int, n int)   n multiple of 16, nrows ≥ 1
// dst[i] = BF16 rounding (as toBF16NEON) of Σ_r float32(rows[r][i]), summed
// in row order, 8 columns per pass over the row headers (24 bytes each).
TEXT ·sumBF16NEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD rows+8(FP), R1
	MOVD nrows+16(FP), R2
	MOVD n+24(FP), R3
	MOVW $0x7FFF, R9
	VDUP R9, V28.S4
	MOVW $1, R9
	VDUP R9, V29.S4
	MOVW $0x7FC00000, R9
	VDUP R9, V30.S4
	LSR  $3, R3, R3
	CBZ  R3, sbdone
	MOVD $0, R5
sbchunk:
	MOVD R1, R6
	MOVD (R6), R7
	ADD  R5, R7, R7
	VLD1 (R7), [V16.H8]
	WORD $0x2e613a00 // SHLL V0.4S, V16.4H, #16
	WORD $0x6e613a01 // SHLL2 V1.4S, V16.8H, #16
	SUBS $1, R2, R8
	BEQ  sbround
sbrow:
	ADD  $24, R6, R6
	MOVD (R6), R7
	ADD  R5, R7, R7
	VLD1 (R7), [V16.H8]
	WORD $0x2e613a02 // SHLL V2.4S, V16.4H, #16
	WORD $0x6e613a03 // SHLL2 V3.4S, V16.8H, #16
	WORD $0x4e22d400 // FADD V0.4S, V0.4S, V2.4S
	WORD $0x4e23d421 // FADD V1.4S, V1.4S, V3.4S
	SUBS $1, R8, R8
	BNE  sbrow
sbround:
	VUSHR $16, V0.S4, V2.S4
	VAND  V29.B16, V2.B16, V2.B16
	VADD  V28.S4, V2.S4, V2.S4
	VADD  V0.S4, V2.S4, V2.S4
	WORD $0x4e20e404 // FCMEQ V4.4S, V0.4S, V0.4S
	WORD $0x6e7e1c44 // BSL V4.16B, V2.16B, V30.16B
	VUSHR $16, V1.S4, V3.S4
	VAND  V29.B16, V3.B16, V3.B16
	VADD  V28.S4, V3.S4, V3.S4
	VADD  V1.S4, V3.S4, V3.S4
	WORD $0x4e21e425 // FCMEQ V5.4S, V1.4S, V1.4S
	WORD $0x6e7e1c65 // BSL V5.16B, V3.16B, V30.16B
	WORD $0x0f108486 // SHRN V6.4H, V4.4S, #16
	WORD $0x4f1084a6 // SHRN2 V6.8H, V5.4S, #16
	VST1.P [V6.H8], 16(R0)
	ADD  $16, R5, R5
	SUBS $1, R3, R3
	BNE  sbchunk
sbdone:
	RET
