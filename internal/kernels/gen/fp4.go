package main

// The E2M1 (FP4) row decoders: dst[k] = e2m1(k)·scales[k/sk] for whole
// blocks of sk elements (sk a positive multiple of 16), the even element of
// each source byte first. tab points at the 16 float32 values of the E2M1
// codes in code order (0..7 the magnitudes, 8..15 their negatives), which
// the Go side builds from tensor's decoder.
//
// Per block both kernels multiply the table by the block's scale once (the
// same float32 products the pure-Go twin computes per element, so the
// results agree bit for bit, NaN scales included) and then look every
// nibble up in the scaled table with VPERMPS. A step takes 8 source bytes
// to 16 floats: VPMOVZXBW widens byte i to word i, OR-ing in the word
// shifted left by 4 leaves byte 2i with the low nibble of source byte i in
// its low 4 bits and byte 2i+1 equal to the high nibble, and VPMOVZXBD
// widens those 16 bytes, in element order, to the dword indices.

// e2m1AVX512 writes decodeE2M1AVX512: the 16-entry VPERMPS on zmm reads
// the low 4 bits of each index, the whole nibble.
func e2m1AVX512() {
	p("// func decodeE2M1AVX512(dst *float32, src *byte, scales, tab *float32, blocks, sk int)")
	p("TEXT ·decodeE2M1AVX512(SB), NOSPLIT, $0-48")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ src+8(FP), SI")
	p("\tMOVQ scales+16(FP), DX")
	p("\tMOVQ tab+24(FP), AX")
	p("\tMOVQ blocks+32(FP), BX")
	p("\tMOVQ sk+40(FP), R11")
	p("\tSHRQ $4, R11")
	p("\tTESTQ BX, BX")
	p("\tJZ e5_done")
	p("\tVMOVUPS (AX), Z8")
	p("e5_block:")
	p("\tVBROADCASTSS (DX), Z9")
	p("\tVMULPS Z9, Z8, Z10")
	p("\tMOVQ R11, CX")
	p("e5_step:")
	p("\tVPMOVZXBW (SI), X0")
	p("\tVPSLLW $4, X0, X1")
	p("\tVPOR X1, X0, X0")
	p("\tVPMOVZXBD X0, Z0")
	p("\tVPERMPS Z10, Z0, Z0")
	p("\tVMOVUPS Z0, (DI)")
	p("\tADDQ $8, SI")
	p("\tADDQ $64, DI")
	p("\tDECQ CX")
	p("\tJNZ e5_step")
	p("\tADDQ $4, DX")
	p("\tDECQ BX")
	p("\tJNZ e5_block")
	p("e5_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// e2m1AVX2 writes decodeE2M1AVX2: the ymm VPERMPS reads only the low 3
// bits of each index, the magnitude, so every nibble is looked up in the
// scaled positive half of the table and in the scaled negative half, and
// VBLENDVPS picks by the sign bit (bit 3 of the nibble shifted to bit 31).
func e2m1AVX2() {
	p("// func decodeE2M1AVX2(dst *float32, src *byte, scales, tab *float32, blocks, sk int)")
	p("TEXT ·decodeE2M1AVX2(SB), NOSPLIT, $0-48")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ src+8(FP), SI")
	p("\tMOVQ scales+16(FP), DX")
	p("\tMOVQ tab+24(FP), AX")
	p("\tMOVQ blocks+32(FP), BX")
	p("\tMOVQ sk+40(FP), R11")
	p("\tSHRQ $4, R11")
	p("\tTESTQ BX, BX")
	p("\tJZ e2_done")
	p("\tVMOVUPS (AX), Y8")
	p("\tVMOVUPS 32(AX), Y9")
	p("e2_block:")
	p("\tVBROADCASTSS (DX), Y10")
	p("\tVMULPS Y10, Y8, Y12")
	p("\tVMULPS Y10, Y9, Y13")
	p("\tMOVQ R11, CX")
	p("e2_step:")
	p("\tVPMOVZXBW (SI), X0")
	p("\tVPSLLW $4, X0, X1")
	p("\tVPOR X1, X0, X0")
	p("\tVPMOVZXBD X0, Y1")
	p("\tVPSRLDQ $8, X0, X0")
	p("\tVPMOVZXBD X0, Y2")
	for i := 1; i <= 2; i++ {
		p("\tVPERMPS Y12, Y%d, Y3", i)
		p("\tVPERMPS Y13, Y%d, Y4", i)
		p("\tVPSLLD $28, Y%d, Y%d", i, i)
		p("\tVBLENDVPS Y%d, Y4, Y3, Y3", i)
		p("\tVMOVUPS Y3, %s", itoaOff(32*(i-1), "DI"))
	}
	p("\tADDQ $8, SI")
	p("\tADDQ $64, DI")
	p("\tDECQ CX")
	p("\tJNZ e2_step")
	p("\tADDQ $4, DX")
	p("\tDECQ BX")
	p("\tJNZ e2_block")
	p("e2_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}
