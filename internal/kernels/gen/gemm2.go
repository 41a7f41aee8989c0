package main

import "fmt"

// The AVX2 (ymm) twins of the AVX-512 GEMM helpers: the E4M3 row decoder,
// the transpose and the BF16 encoder. Without them an AVX2 GEMM spent more
// than a third of its time in per-row decoder calls, a scalar transpose and
// a scalar BF16 encode.

// decode8AVX2 decodes the 8 E4M3 codes at mem into the ymm register out by
// the general path (NaN codes included): Y8–Y11 hold e4m3Consts, Y4–Y7
// are scratch.
func decode8AVX2(mem string, out int) {
	p("\tVPMOVZXBD %s, Y4", mem)
	p("\tVPAND Y8, Y4, Y5")
	p("\tVPSLLD $20, Y5, Y%d", out)
	p("\tVMULPS Y10, Y%d, Y%d", out, out)
	p("\tVPSLLD $24, Y4, Y6")
	p("\tVPAND Y9, Y6, Y6")
	p("\tVPOR Y6, Y%d, Y%d", out, out)
	p("\tVPCMPEQD Y8, Y5, Y7")
	p("\tVBLENDVPS Y7, Y11, Y%d, Y%d", out, out)
}

// decodeRowsAVX2 decodes a block of rows: dst[r*ldd+p] = e4m3(src[r*lds+p])
// for r < rows, p < kc (kc a positive multiple of 8), prefetching the next
// 128 bytes of every source row (the next K block) into L2.
//
// Each run of 32 codes without NaN codes (0x7F, 0xFF; one byte compare and
// VPMOVMSKB) takes the fast path of decodeRows: sign-extend, shift left by
// 20, keep 0x87F00000, times 2^120. Other runs, and the last kc mod 32
// codes, take the general path.
func decodeRowsAVX2() {
	p("// func decodeRowsAVX2(dst *float32, ldd int, src *byte, lds int, rows, kc int)")
	p("TEXT ·decodeRowsAVX2(SB), NOSPLIT, $0-48")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ ldd+8(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ src+16(FP), SI")
	p("\tMOVQ lds+24(FP), R10")
	p("\tMOVQ rows+32(FP), BX")
	p("\tMOVQ kc+40(FP), R11")
	p("\tTESTQ BX, BX")
	p("\tJZ r2_done")
	for i, c := range append(append([]string{}, e4m3Consts...), "0x87F00000", "0x80808080") {
		p("\tMOVL $%s, R8", c)
		p("\tVMOVD R8, X%d", 8+i)
		p("\tVPBROADCASTD X%d, Y%d", 8+i, 8+i)
	}
	p("\tVPCMPEQB Y14, Y14, Y14") // all ones: 0xFF bytes
	p("r2_row:")
	p("\tMOVQ DI, DX")
	p("\tMOVQ SI, R12")
	p("\tMOVQ R11, CX")
	p("\tPREFETCHT1 128(SI)")
	p("\tPREFETCHT1 192(SI)")
	p("r2_chunk:")
	p("\tCMPQ CX, $32")
	p("\tJLT r2_tail")
	// NaN scan: (b | 0x80) == 0xFF for any of the 32 bytes?
	p("\tVPOR (R12), Y13, Y4")
	p("\tVPCMPEQB Y14, Y4, Y4")
	p("\tVPMOVMSKB Y4, AX")
	p("\tTESTL AX, AX")
	p("\tJNZ r2_slow")
	for i := 0; i < 4; i++ {
		p("\tVPMOVSXBD %d(R12), Y%d", 8*i, i)
	}
	for i := 0; i < 4; i++ {
		p("\tVPSLLD $20, Y%d, Y%d", i, i)
		p("\tVPAND Y12, Y%d, Y%d", i, i)
		p("\tVMULPS Y10, Y%d, Y%d", i, i)
		p("\tVMOVUPS Y%d, %d(DX)", i, 32*i)
	}
	p("\tJMP r2_next")
	p("r2_slow:")
	for i := 0; i < 4; i++ {
		decode8AVX2(itoaOff(8*i, "R12"), i)
		p("\tVMOVUPS Y%d, %d(DX)", i, 32*i)
	}
	p("r2_next:")
	p("\tADDQ $32, R12")
	p("\tADDQ $128, DX")
	p("\tSUBQ $32, CX")
	p("\tJMP r2_chunk")
	p("r2_tail:")
	p("\tTESTQ CX, CX")
	p("\tJZ r2_rownext")
	decode8AVX2("(R12)", 0)
	p("\tVMOVUPS Y0, (DX)")
	p("\tADDQ $8, R12")
	p("\tADDQ $32, DX")
	p("\tSUBQ $8, CX")
	p("\tJMP r2_tail")
	p("r2_rownext:")
	p("\tADDQ R10, SI")
	p("\tADDQ R9, DI")
	p("\tDECQ BX")
	p("\tJNZ r2_row")
	p("r2_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// itoaOff returns the operand off(reg).
func itoaOff(off int, reg string) string {
	if off == 0 {
		return "(" + reg + ")"
	}
	return fmt.Sprintf("%d(%s)", off, reg)
}

// transposeAVX2 writes dst[i*ldd+j] = src[j*lds+i] for i < rows, j < cols
// (both positive multiples of 8) in 8×8 blocks: for each block of 8 source
// rows (j), every 8 columns (i) are loaded, transposed in registers
// (VUNPCKLPS/VUNPCKHPS, VSHUFPS, VPERM2F128) and stored as 8 rows of dst.
func transposeAVX2() {
	p("// func transposeAVX2(dst *float32, ldd int, src *float32, lds int, rows, cols int)")
	p("TEXT ·transposeAVX2(SB), NOSPLIT, $0-48")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ ldd+8(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ src+16(FP), SI")
	p("\tMOVQ lds+24(FP), R10")
	p("\tSHLQ $2, R10")
	p("\tMOVQ rows+32(FP), R11")
	p("\tMOVQ cols+40(FP), BX")
	p("\tSHRQ $3, R11")
	p("\tSHRQ $3, BX")
	p("\tTESTQ R11, R11")
	p("\tJZ t2_done")
	p("\tTESTQ BX, BX")
	p("\tJZ t2_done")
	p("\tLEAQ (R10)(R10*2), R13") // 3·lds
	p("\tLEAQ (R9)(R9*2), R14")   // 3·ldd
	p("t2_jblock:")
	p("\tMOVQ SI, AX")           // src rows j..j+7, column i
	p("\tMOVQ DI, DX")           // dst row i, column j
	p("\tLEAQ (SI)(R10*4), R12") // src row j+4
	p("\tMOVQ R11, CX")
	p("t2_iblock:")
	rows := []string{"(AX)", "(AX)(R10*1)", "(AX)(R10*2)", "(AX)(R13*1)", "(R12)", "(R12)(R10*1)", "(R12)(R10*2)", "(R12)(R13*1)"}
	for j, m := range rows {
		p("\tVMOVUPS %s, Y%d", m, j)
	}
	for b := 0; b < 4; b++ {
		p("\tVUNPCKLPS Y%d, Y%d, Y%d", 2*b+1, 2*b, 8+2*b)
		p("\tVUNPCKHPS Y%d, Y%d, Y%d", 2*b+1, 2*b, 9+2*b)
	}
	// s[q] (q < 4) = column q | column q+4 of rows 0–3; s[4+q] of rows 4–7.
	for h := 0; h < 2; h++ {
		t0, t1, t2, t3 := 8+4*h, 9+4*h, 10+4*h, 11+4*h
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", t2, t0, 4*h+0)
		p("\tVSHUFPS $0xEE, Y%d, Y%d, Y%d", t2, t0, 4*h+1)
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", t3, t1, 4*h+2)
		p("\tVSHUFPS $0xEE, Y%d, Y%d, Y%d", t3, t1, 4*h+3)
	}
	for q := 0; q < 4; q++ {
		p("\tVPERM2F128 $0x20, Y%d, Y%d, Y%d", 4+q, q, 8+q)
		p("\tVPERM2F128 $0x31, Y%d, Y%d, Y%d", 4+q, q, 12+q)
	}
	outs := []string{"(DX)", "(DX)(R9*1)", "(DX)(R9*2)", "(DX)(R14*1)"}
	for q := 0; q < 4; q++ {
		p("\tVMOVUPS Y%d, %s", 8+q, outs[q])
	}
	p("\tLEAQ (DX)(R9*4), R8")
	for q := 0; q < 4; q++ {
		p("\tVMOVUPS Y%d, %s", 12+q, "(R8)"+outs[q][4:])
	}
	p("\tADDQ $32, AX")
	p("\tADDQ $32, R12")
	p("\tLEAQ (R8)(R9*4), DX")
	p("\tDECQ CX")
	p("\tJNZ t2_iblock")
	p("\tLEAQ (SI)(R10*8), SI")
	p("\tADDQ $32, DI")
	p("\tDECQ BX")
	p("\tJNZ t2_jblock")
	p("t2_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// cvtBF16AVX2 converts n float32 (a multiple of 16) to bfloat16 bits
// exactly as tensor.BF16FromFloat32 and cvtBF16AVX512, with signed dword
// compares on magnitudes and VBLENDVPS in place of mask registers, and
// VPACKUSDW+VPERMQ to narrow.
func cvtBF16AVX2() {
	p("// func cvtBF16AVX2(dst *uint16, src *float32, n int)")
	p("TEXT ·cvtBF16AVX2(SB), NOSPLIT, $0-24")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ src+8(FP), SI")
	p("\tMOVQ n+16(FP), CX")
	p("\tSHRQ $4, CX")
	p("\tJZ bf2_done")
	for i, c := range []string{"0x7FFFFFFF", "0x7F7FFFFF", "0x7FFF", "1", "0x8000", "0x7F7F", "0x40", "0x7F800000"} {
		p("\tMOVL $%s, R8", c)
		p("\tVMOVD R8, X%d", 8+i)
		p("\tVPBROADCASTD X%d, Y%d", 8+i, 8+i)
	}
	p("bf2_loop:")
	for h := 0; h < 2; h++ {
		res := []int{7, 4}[h]
		p("\tVMOVDQU %d(SI), Y0", 32*h)             // u
		p("\tVPAND Y8, Y0, Y1")                     // a = u & 0x7FFFFFFF
		p("\tVPSRLD $16, Y0, Y2")                   // u >> 16
		p("\tVPAND Y11, Y2, Y3")                    // (u>>16)&1
		p("\tVPADDD Y10, Y3, Y3")                   // + 0x7FFF
		p("\tVPADDD Y0, Y3, Y3")                    // r = u + ...
		p("\tVPSRLD $16, Y3, Y%d", res)             // r >> 16 (result)
		p("\tVPAND Y8, Y3, Y5")                     // r & 0x7FFFFFFF
		p("\tVPCMPGTD Y9, Y5, Y5")                  // overflow: > 0x7F7FFFFF
		p("\tVPAND Y12, Y2, Y6")                    // sign
		p("\tVPOR Y13, Y6, Y6")                     // sign | 0x7F7F
		p("\tVBLENDVPS Y5, Y6, Y%d, Y%d", res, res) // saturate
		p("\tVPCMPGTD Y9, Y1, Y5")                  // a > 0x7F7FFFFF: Inf or NaN
		p("\tVBLENDVPS Y5, Y2, Y%d, Y%d", res, res) // u >> 16
		p("\tVPCMPGTD Y15, Y1, Y5")                 // a > 0x7F800000: NaN
		p("\tVPOR Y14, Y2, Y6")
		p("\tVBLENDVPS Y5, Y6, Y%d, Y%d", res, res) // quiet NaN
	}
	p("\tVPACKUSDW Y4, Y7, Y0")
	p("\tVPERMQ $0xD8, Y0, Y0")
	p("\tVMOVDQU Y0, (DI)")
	p("\tADDQ $64, SI")
	p("\tADDQ $32, DI")
	p("\tDECQ CX")
	p("\tJNZ bf2_loop")
	p("bf2_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}
