//go:build arm64 && !noasm

#include "textflag.h"

// The NEON (ASIMD) twins of the amd64 attention kernels (mla.go): the 4×16
// strided GEMM micro-kernel, BF16/F16 widening, dot/axpy/scal/max, the
// vector exp2 of the online softmax, and the fused BF16 QK and PV over cache
// rows read in place. Instructions the Go assembler lacks are WORD
// encodings with the mnemonic beside them.

// func kern4x16neon(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)
// C[i][0:16] (= or +=) Σ_{p<k} A(i,p)·B[p][0:16] for i < 4, A(i,p) = a[i·ars+p·aks].
// V(4i+v) accumulates row i, columns 4v…4v+3.
TEXT ·kern4x16neon(SB), NOSPLIT, $0-65
	MOVD  k+0(FP), R0
	MOVD  a+8(FP), R1
	MOVD  ars+16(FP), R2
	MOVD  aks+24(FP), R3
	MOVD  b+32(FP), R4
	MOVD  ldb+40(FP), R5
	MOVD  c+48(FP), R6
	MOVD  ldc+56(FP), R7
	MOVBU acc+64(FP), R8
	LSL   $2, R2, R2
	LSL   $2, R3, R3
	LSL   $2, R5, R5
	LSL   $2, R7, R7
	ADD   R2, R1, R9
	ADD   R2, R9, R10
	ADD   R2, R10, R11
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	CBZ   R0, kstore
kloop:
	VLD1  (R4), [V16.S4, V17.S4, V18.S4, V19.S4]
	ADD   R5, R4, R4
	VLD1R (R1), [V20.S4]
	VLD1R (R9), [V21.S4]
	VLD1R (R10), [V22.S4]
	VLD1R (R11), [V23.S4]
	ADD   R3, R1, R1
	ADD   R3, R9, R9
	ADD   R3, R10, R10
	ADD   R3, R11, R11
	VFMLA V16.S4, V20.S4, V0.S4
	VFMLA V17.S4, V20.S4, V1.S4
	VFMLA V18.S4, V20.S4, V2.S4
	VFMLA V19.S4, V20.S4, V3.S4
	VFMLA V16.S4, V21.S4, V4.S4
	VFMLA V17.S4, V21.S4, V5.S4
	VFMLA V18.S4, V21.S4, V6.S4
	VFMLA V19.S4, V21.S4, V7.S4
	VFMLA V16.S4, V22.S4, V8.S4
	VFMLA V17.S4, V22.S4, V9.S4
	VFMLA V18.S4, V22.S4, V10.S4
	VFMLA V19.S4, V22.S4, V11.S4
	VFMLA V16.S4, V23.S4, V12.S4
	VFMLA V17.S4, V23.S4, V13.S4
	VFMLA V18.S4, V23.S4, V14.S4
	VFMLA V19.S4, V23.S4, V15.S4
	SUBS  $1, R0, R0
	BNE   kloop
kstore:
	CBZ   R8, kput
	VLD1  (R6), [V24.S4, V25.S4, V26.S4, V27.S4]
	WORD $0x4e20d700 // FADD V0.4S, V24.4S, V0.4S
	WORD $0x4e21d721 // FADD V1.4S, V25.4S, V1.4S
	WORD $0x4e22d742 // FADD V2.4S, V26.4S, V2.4S
	WORD $0x4e23d763 // FADD V3.4S, V27.4S, V3.4S
	VST1  [V0.S4, V1.S4, V2.S4, V3.S4], (R6)
	ADD   R7, R6, R6
	VLD1  (R6), [V24.S4, V25.S4, V26.S4, V27.S4]
	WORD $0x4e24d704 // FADD V4.4S, V24.4S, V4.4S
	WORD $0x4e25d725 // FADD V5.4S, V25.4S, V5.4S
	WORD $0x4e26d746 // FADD V6.4S, V26.4S, V6.4S
	WORD $0x4e27d767 // FADD V7.4S, V27.4S, V7.4S
	VST1  [V4.S4, V5.S4, V6.S4, V7.S4], (R6)
	ADD   R7, R6, R6
	VLD1  (R6), [V24.S4, V25.S4, V26.S4, V27.S4]
	WORD $0x4e28d708 // FADD V8.4S, V24.4S, V8.4S
	WORD $0x4e29d729 // FADD V9.4S, V25.4S, V9.4S
	WORD $0x4e2ad74a // FADD V10.4S, V26.4S, V10.4S
	WORD $0x4e2bd76b // FADD V11.4S, V27.4S, V11.4S
	VST1  [V8.S4, V9.S4, V10.S4, V11.S4], (R6)
	ADD   R7, R6, R6
	VLD1  (R6), [V24.S4, V25.S4, V26.S4, V27.S4]
	WORD $0x4e2cd70c // FADD V12.4S, V24.4S, V12.4S
	WORD $0x4e2dd72d // FADD V13.4S, V25.4S, V13.4S
	WORD $0x4e2ed74e // FADD V14.4S, V26.4S, V14.4S
	WORD $0x4e2fd76f // FADD V15.4S, V27.4S, V15.4S
	VST1  [V12.S4, V13.S4, V14.S4, V15.S4], (R6)
	ADD   R7, R6, R6
	RET
kput:
	VST1  [V0.S4, V1.S4, V2.S4, V3.S4], (R6)
	ADD   R7, R6, R6
	VST1  [V4.S4, V5.S4, V6.S4, V7.S4], (R6)
	ADD   R7, R6, R6
	VST1  [V8.S4, V9.S4, V10.S4, V11.S4], (R6)
	ADD   R7, R6, R6
	VST1  [V12.S4, V13.S4, V14.S4, V15.S4], (R6)
	ADD   R7, R6, R6
	RET

// func cvtBF16x8neon(dst *float32, src *uint16, n int)   n multiple of 8
TEXT ·cvtBF16x8neon(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	CBZ  R2, cbdone
cbloop:
	VLD1.P 16(R1), [V0.H8]
	WORD $0x2e613801 // SHLL V1.4S, V0.4H, #16
	WORD $0x6e613802 // SHLL2 V2.4S, V0.8H, #16
	VST1.P [V1.S4, V2.S4], 32(R0)
	SUBS $1, R2, R2
	BNE  cbloop
cbdone:
	RET

// func cvtF16x8neon(dst *float32, src *uint16, n int)   n multiple of 8
TEXT ·cvtF16x8neon(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	CBZ  R2, chdone
chloop:
	VLD1.P 16(R1), [V0.H8]
	WORD $0x0e217801 // FCVTL V1.4S, V0.4H
	WORD $0x4e217802 // FCVTL2 V2.4S, V0.8H
	VST1.P [V1.S4, V2.S4], 32(R0)
	SUBS $1, R2, R2
	BNE  chloop
chdone:
	RET

// func dotx16neon(a, b *float32, n int) float32   n multiple of 16
TEXT ·dotx16neon(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	LSR  $4, R2, R2
	CBZ  R2, dtdone
dtloop:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	VFMLA V4.S4, V8.S4, V0.S4
	VFMLA V5.S4, V9.S4, V1.S4
	VFMLA V6.S4, V10.S4, V2.S4
	VFMLA V7.S4, V11.S4, V3.S4
	SUBS $1, R2, R2
	BNE  dtloop
dtdone:
	WORD $0x4e21d400 // FADD V0.4S, V0.4S, V1.4S
	WORD $0x4e23d442 // FADD V2.4S, V2.4S, V3.4S
	WORD $0x4e22d400 // FADD V0.4S, V0.4S, V2.4S
	WORD $0x6e20d400 // FADDP V0.4S, V0.4S, V0.4S
	WORD $0x7e30d800 // FADDP S0, V0.2S
	FMOVS F0, ret+24(FP)
	RET

// func axpyx16neon(alpha float32, x, y *float32, n int)   n multiple of 16
TEXT ·axpyx16neon(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F31
	MOVD  x+8(FP), R0
	MOVD  y+16(FP), R1
	MOVD  n+24(FP), R2
	VDUP  V31.S[0], V31.S4
	LSR   $4, R2, R2
	CBZ   R2, axdone
axloop:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1  (R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VFMLA V0.S4, V31.S4, V4.S4
	VFMLA V1.S4, V31.S4, V5.S4
	VFMLA V2.S4, V31.S4, V6.S4
	VFMLA V3.S4, V31.S4, V7.S4
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUBS  $1, R2, R2
	BNE   axloop
axdone:
	RET

// func scalx16neon(alpha float32, x *float32, n int)   n multiple of 16
TEXT ·scalx16neon(SB), NOSPLIT, $0-24
	FMOVS alpha+0(FP), F31
	MOVD  x+8(FP), R0
	MOVD  n+16(FP), R2
	VDUP  V31.S[0], V31.S4
	LSR   $4, R2, R2
	CBZ   R2, scdone
scloop:
	VLD1  (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD $0x6e3fdc00 // FMUL V0.4S, V0.4S, V31.4S
	WORD $0x6e3fdc21 // FMUL V1.4S, V1.4S, V31.4S
	WORD $0x6e3fdc42 // FMUL V2.4S, V2.4S, V31.4S
	WORD $0x6e3fdc63 // FMUL V3.4S, V3.4S, V31.4S
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)
	SUBS  $1, R2, R2
	BNE   scloop
scdone:
	RET

// func maxIntox16neon(dst, src *float32, n int)   n multiple of 16
TEXT ·maxIntox16neon(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $4, R2, R2
	CBZ  R2, mxdone
mxloop:
	VLD1  (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	WORD $0x4e24f400 // FMAX V0.4S, V0.4S, V4.4S
	WORD $0x4e25f421 // FMAX V1.4S, V1.4S, V5.4S
	WORD $0x4e26f442 // FMAX V2.4S, V2.4S, V6.4S
	WORD $0x4e27f463 // FMAX V3.4S, V3.4S, V7.4S
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)
	SUBS $1, R2, R2
	BNE  mxloop
mxdone:
	RET

// func exp2Subx4neon(x, sh, acc *float32, n int, coef *float32)   n multiple of 4
// coef: c0..c7, then -127 (low clamp), -126 (flush-to-zero threshold), 127
// (high clamp), as for the AVX2 kernel. x = 2^clamp(x-sh) built as
// poly(f)·2^n with the exponent bits set directly; results below 2^-126
// (including 2^-Inf) are exactly 0; acc += x.
TEXT ·exp2Subx4neon(SB), NOSPLIT, $0-40
	MOVD x+0(FP), R0
	MOVD sh+8(FP), R1
	MOVD acc+16(FP), R2
	MOVD n+24(FP), R3
	MOVD coef+32(FP), R4
	VLD1R.P 4(R4), [V16.S4]
	VLD1R.P 4(R4), [V17.S4]
	VLD1R.P 4(R4), [V18.S4]
	VLD1R.P 4(R4), [V19.S4]
	VLD1R.P 4(R4), [V20.S4]
	VLD1R.P 4(R4), [V21.S4]
	VLD1R.P 4(R4), [V22.S4]
	VLD1R.P 4(R4), [V23.S4]
	VLD1R.P 4(R4), [V24.S4]
	VLD1R.P 4(R4), [V25.S4]
	VLD1R.P 4(R4), [V26.S4]
	MOVW $127, R5
	VDUP R5, V27.S4
	LSR  $2, R3, R3
	CBZ  R3, e2done
e2loop:
	VLD1  (R0), [V0.S4]
	VLD1.P 16(R1), [V1.S4]
	WORD $0x4ea1d400 // FSUB V0.4S, V0.4S, V1.4S
	WORD $0x4e38f400 // FMAX V0.4S, V0.4S, V24.4S
	WORD $0x4ebaf400 // FMIN V0.4S, V0.4S, V26.4S
	WORD $0x6e39e407 // FCMGE V7.4S, V0.4S, V25.4S; keep: x ≥ -126
	WORD $0x4e218802 // FRINTN V2.4S, V0.4S
	WORD $0x4ea2d403 // FSUB V3.4S, V0.4S, V2.4S
	VORR  V22.B16, V22.B16, V4.B16
	VFMLA V23.S4, V3.S4, V4.S4
	VORR  V21.B16, V21.B16, V5.B16
	VFMLA V4.S4, V3.S4, V5.S4
	VORR  V20.B16, V20.B16, V4.B16
	VFMLA V5.S4, V3.S4, V4.S4
	VORR  V19.B16, V19.B16, V5.B16
	VFMLA V4.S4, V3.S4, V5.S4
	VORR  V18.B16, V18.B16, V4.B16
	VFMLA V5.S4, V3.S4, V4.S4
	VORR  V17.B16, V17.B16, V5.B16
	VFMLA V4.S4, V3.S4, V5.S4
	VORR  V16.B16, V16.B16, V4.B16
	VFMLA V5.S4, V3.S4, V4.S4
	WORD $0x4ea1b845 // FCVTZS V5.4S, V2.4S
	VADD  V27.S4, V5.S4, V5.S4
	VSHL  $23, V5.S4, V5.S4
	WORD $0x6e25dc84 // FMUL V4.4S, V4.4S, V5.4S
	VAND  V7.B16, V4.B16, V4.B16
	VST1.P [V4.S4], 16(R0)
	VLD1  (R2), [V6.S4]
	WORD $0x4e24d4c6 // FADD V6.4S, V6.4S, V4.4S
	VST1.P [V6.S4], 16(R2)
	SUBS $1, R3, R3
	BNE  e2loop
e2done:
	RET

// func qkBF16x8neon(q *float32, base *uint16, offs *int64, n, d int, s *float32)   d multiple of 8, n ≥ 1
// s[i] = Σ_c q[c]·float32(base[offs[i]+c]).
TEXT ·qkBF16x8neon(SB), NOSPLIT, $0-48
	MOVD q+0(FP), R0
	MOVD base+8(FP), R1
	MOVD offs+16(FP), R2
	MOVD n+24(FP), R3
	MOVD d+32(FP), R4
	MOVD s+40(FP), R5
	LSR  $3, R4, R4
qkrow:
	MOVD.P 8(R2), R6
	ADD  R6<<1, R1, R6
	MOVD R0, R7
	MOVD R4, R8
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
qkin:
	VLD1.P 16(R6), [V2.H8]
	WORD $0x2e613843 // SHLL V3.4S, V2.4H, #16
	WORD $0x6e613844 // SHLL2 V4.4S, V2.8H, #16
	VLD1.P 32(R7), [V5.S4, V6.S4]
	VFMLA V3.S4, V5.S4, V0.S4
	VFMLA V4.S4, V6.S4, V1.S4
	SUBS $1, R8, R8
	BNE  qkin
	WORD $0x4e21d400 // FADD V0.4S, V0.4S, V1.4S
	WORD $0x6e20d400 // FADDP V0.4S, V0.4S, V0.4S
	WORD $0x7e30d800 // FADDP S0, V0.2S
	FMOVS F0, (R5)
	ADD  $4, R5, R5
	SUBS $1, R3, R3
	BNE  qkrow
	RET

// func pvBF16x32neon(o, p *float32, base *uint16, offs *int64, n, dv int)   dv multiple of 32, n ≥ 1
// o[c] += Σ_i p[i]·float32(base[offs[i]+c]), 32 columns of o in registers
// per pass over the rows.
TEXT ·pvBF16x32neon(SB), NOSPLIT, $0-48
	MOVD o+0(FP), R0
	MOVD p+8(FP), R1
	MOVD base+16(FP), R2
	MOVD offs+24(FP), R3
	MOVD n+32(FP), R4
	MOVD dv+40(FP), R5
	LSR  $5, R5, R5
	MOVD $0, R6
pvchunk:
	ADD  $64, R0, R9
	VLD1 (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1 (R9), [V4.S4, V5.S4, V6.S4, V7.S4]
	MOVD R1, R7
	MOVD R3, R8
	MOVD R4, R10
pvrow:
	MOVD.P 8(R8), R11
	ADD  R11<<1, R2, R11
	ADD  R6, R11, R11
	VLD1R.P 4(R7), [V16.S4]
	VLD1 (R11), [V17.H8, V18.H8, V19.H8, V20.H8]
	WORD $0x2e613a35 // SHLL V21.4S, V17.4H, #16
	WORD $0x6e613a36 // SHLL2 V22.4S, V17.8H, #16
	WORD $0x2e613a57 // SHLL V23.4S, V18.4H, #16
	WORD $0x6e613a58 // SHLL2 V24.4S, V18.8H, #16
	WORD $0x2e613a79 // SHLL V25.4S, V19.4H, #16
	WORD $0x6e613a7a // SHLL2 V26.4S, V19.8H, #16
	WORD $0x2e613a9b // SHLL V27.4S, V20.4H, #16
	WORD $0x6e613a9c // SHLL2 V28.4S, V20.8H, #16
	VFMLA V21.S4, V16.S4, V0.S4
	VFMLA V22.S4, V16.S4, V1.S4
	VFMLA V23.S4, V16.S4, V2.S4
	VFMLA V24.S4, V16.S4, V3.S4
	VFMLA V25.S4, V16.S4, V4.S4
	VFMLA V26.S4, V16.S4, V5.S4
	VFMLA V27.S4, V16.S4, V6.S4
	VFMLA V28.S4, V16.S4, V7.S4
	SUBS $1, R10, R10
	BNE  pvrow
	VST1 [V0.S4, V1.S4, V2.S4, V3.S4], (R0)
	VST1 [V4.S4, V5.S4, V6.S4, V7.S4], (R9)
	ADD  $128, R0, R0
	ADD  $64, R6, R6
	SUBS $1, R5, R5
	BNE  pvchunk
	RET
