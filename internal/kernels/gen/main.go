// Command gen writes every assembly file of package kernels:
//
//	gemm_amd64.s        the GEMM micro-kernels, E4M3 decoders, the 16×16
//	                    transpose, the BF16 encoder and the peak loops,
//	                    and the AVX2 twins of the row decoder, transpose
//	                    and encoder (gemm2.go), and the E2M1 (FP4) row
//	                    decoders (fp4.go)
//	mla_avx512_amd64.s  the attention kernels, AVX-512
//	mla_avx2_amd64.s    the attention kernels, AVX2+FMA
//	bf16_amd64.s        the BF16 combine kernels, AVX2
//	copy_amd64.s        the streaming (non-temporal) copy, AVX2
//	asm_amd64.go        the Go declarations of every assembly function
//	asm_stub.go         their stand-ins for builds without assembly
//
// The GEMM file, the 4-row attention GEMM micro-kernel (gemm4.go) and the
// streaming attention kernels (vec.go) are generated from one template per
// kernel for both vector widths; the other attention kernels and the BF16
// combine kernels are kept as text (mla.go, bf16.go) and emitted as they
// are.
//
// Run it through go generate in internal/kernels (go run ./gen), or with
// -check to verify that the committed files equal its output (exit 1 and
// the names of the files that differ otherwise).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"strings"
)

var w strings.Builder

// prefetchA is the distance in bytes at which the micro-kernels prefetch
// the packed A panel (0: none).
var prefetchA = 0

// avx2Unroll is the k-loop unrolling of the AVX2 GEMM micro-kernel.
var avx2Unroll = 2

// qkPrefetchAVX2 is the distance in bytes at which the natural-order AVX2
// QK kernel (qkBF16x8avx2, now only for rows of an odd multiple of 8
// channels) prefetches the key rows: eight 576-wide BF16 rows ahead. In
// alternating single-thread runs of the h_q=1 decode (memory-bound) it read
// 19.8–21.5 GB/s against 14.9–19.1 at two rows ahead (the AVX-512 kernel's
// distance).
var qkPrefetchAVX2 = 9216

// qkAheadAVX2 is how many tokens ahead (through offs) the unpacking AVX2
// QK kernel prefetches the key row: eight, like qkPrefetchAVX2's distance
// for 576-wide rows.
const qkAheadAVX2 = 8

func p(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }

// bRow returns the address of broadcast row j (of 12) given BX (rows 0-3),
// R13 (rows 4-7) and SI (rows 8-11), R11 = row stride, R12 = 3·stride.
func bRow(j int) string {
	base := []string{"BX", "R13", "SI"}[j/4]
	switch j % 4 {
	case 0:
		return "(" + base + ")"
	case 1:
		return "(" + base + ")(R11*1)"
	case 2:
		return "(" + base + ")(R11*2)"
	}
	return "(" + base + ")(R12*1)"
}

// micro writes a micro-kernel with mr = vecs·lanes rows (vector operand A,
// packed [kc][mr]) and nr broadcast columns (B rows, stride ldb floats).
//
// With unroll 2 the k loop runs two steps per iteration (addressed by
// displacement, one pointer update per pair).
func micro(name, reg string, vecs, lanes, nr, bcast0, nbcast, unroll int, zero, vzero string) {
	microKernel(name, reg, vecs, lanes, nr, bcast0, nbcast, unroll, zero, vzero, false)
}

// microKernel writes micro's kernel or, with panels, its loop over a column
// of micro-tiles: name(kc, panels, a, b, ldb, c, ldc, sa, sb) runs the
// micro-kernel on the panels consecutive packed A panels at a (kc·mr floats
// each), the same B rows, the C rows from c in steps of mr and the A scales
// from sa in steps of mr, in one call (no Go call per micro-tile).
func microKernel(name, reg string, vecs, lanes, nr, bcast0, nbcast, unroll int, zero, vzero string, panels bool) {
	mr := vecs * lanes
	vb := lanes * 4 // vector bytes
	// The frame offsets of the arguments after kc.
	argA, argB, argLdb, argC, argLdc, argSa, argSb := 8, 16, 24, 32, 40, 48, 56
	if panels {
		argA, argB, argLdb, argC, argLdc, argSa, argSb = 16, 24, 32, 40, 48, 56, 64
		p("// func %s(kc, panels int, a, b *float32, ldb int, c *float32, ldc int, sa, sb *float32)", name)
		p("// Computes c[j*ldc+i] += sa[i]*sb[j] * Σ_p a[(i/%d)*kc*%d+p*%d+i%%%d]*b[j*ldb+p] for i < %d·panels, j < %d.", mr, mr, mr, mr, mr, nr)
		p("TEXT ·%s(SB), NOSPLIT, $0-72", name)
		p("\tMOVQ panels+8(FP), R9")
		p("\tMOVQ a+%d(FP), AX", argA)
		p("\tMOVQ ldb+%d(FP), R11", argLdb)
		p("\tSHLQ $2, R11")
		p("\tLEAQ (R11)(R11*2), R12")
		p("\tMOVQ c+%d(FP), R10", argC)
		p("\tTESTQ R9, R9")
		p("\tJZ %s_done", name)
		p("%s_panel:", name)
		// AX ends each panel's k loop at the next panel's start.
		p("\tMOVQ kc+0(FP), CX")
		p("\tMOVQ b+%d(FP), BX", argB)
	} else {
		p("// func %s(kc int, a, b *float32, ldb int, c *float32, ldc int, sa, sb *float32)", name)
		p("// Computes c[j*ldc+i] += sa[i]*sb[j] * Σ_p a[p*%d+i]*b[j*ldb+p] for i < %d, j < %d.", mr, mr, nr)
		p("TEXT ·%s(SB), NOSPLIT, $0-64", name)
		p("\tMOVQ kc+0(FP), CX")
		p("\tMOVQ a+%d(FP), AX", argA)
		p("\tMOVQ b+%d(FP), BX", argB)
		p("\tMOVQ ldb+%d(FP), R11", argLdb)
		p("\tSHLQ $2, R11")
		p("\tLEAQ (R11)(R11*2), R12")
	}
	p("\tLEAQ (BX)(R11*4), R13")
	p("\tLEAQ (R13)(R11*4), SI")
	nacc := vecs * nr
	for i := 0; i < nacc; i++ {
		p("\t%s %s%d, %s%d, %s%d", zero, reg, i, reg, i, reg, i)
	}
	p("\tTESTQ CX, CX")
	p("\tJZ %s_promote", name)
	// step writes one k step at element offset k of the A panel and the
	// B rows.
	step := func(k int) {
		for v := 0; v < vecs; v++ {
			p("\tVMOVUPS %d(AX), %s%d", k*mr*4+v*vb, reg, nacc+v)
		}
		if prefetchA > 0 {
			for off := 0; off < mr*4; off += 64 {
				p("\tPREFETCHT0 %d(AX)", k*mr*4+prefetchA+off)
			}
		}
		for j := 0; j < nr; j++ {
			br := bcast0 + j%nbcast
			row := bRow(j)
			if k > 0 {
				row = fmt.Sprintf("%d%s", 4*k, row)
			}
			p("\tVBROADCASTSS %s, %s%d", row, reg, br)
			for v := 0; v < vecs; v++ {
				p("\tVFMADD231PS %s%d, %s%d, %s%d", reg, nacc+v, reg, br, reg, j*vecs+v)
			}
		}
	}
	// advance moves the pointers k steps on (SI, the base of rows 8–11,
	// only where there are such rows).
	advance := func(k int) {
		p("\tADDQ $%d, AX", k*mr*4)
		p("\tADDQ $%d, BX", 4*k)
		p("\tADDQ $%d, R13", 4*k)
		if nr > 8 || unroll == 1 {
			p("\tADDQ $%d, SI", 4*k)
		}
	}
	if unroll == 1 {
		p("%s_loop:", name)
		step(0)
		advance(1)
		p("\tDECQ CX")
		p("\tJNZ %s_loop", name)
	} else {
		// An odd kc runs one step first; then pairs of steps.
		p("\tTESTQ $1, CX")
		p("\tJZ %s_pairs", name)
		step(0)
		advance(1)
		p("\tDECQ CX")
		p("\tJZ %s_promote", name)
		p("%s_pairs:", name)
		step(0)
		step(1)
		advance(2)
		p("\tSUBQ $2, CX")
		p("\tJNZ %s_pairs", name)
	}
	p("%s_promote:", name)
	p("\tMOVQ sa+%d(FP), DI", argSa)
	for v := 0; v < vecs; v++ {
		p("\tVMOVUPS %d(DI), %s%d", v*vb, reg, nacc+v)
	}
	p("\tMOVQ sb+%d(FP), DI", argSb)
	if panels {
		p("\tADDQ $%d, sa+%d(FP)", mr*4, argSa)
		p("\tMOVQ R10, DX")
	} else {
		p("\tMOVQ c+%d(FP), DX", argC)
	}
	p("\tMOVQ ldc+%d(FP), R8", argLdc)
	p("\tSHLQ $2, R8")
	s, t := bcast0, bcast0+1
	for j := 0; j < nr; j++ {
		p("\tVBROADCASTSS %d(DI), %s%d", 4*j, reg, s)
		for v := 0; v < vecs; v++ {
			p("\tVMULPS %s%d, %s%d, %s%d", reg, nacc+v, reg, s, reg, t)
			p("\tVFMADD213PS %d(DX), %s%d, %s%d", v*vb, reg, t, reg, j*vecs+v)
			p("\tVMOVUPS %s%d, %d(DX)", reg, j*vecs+v, v*vb)
		}
		p("\tADDQ R8, DX")
	}
	if panels {
		p("\tADDQ $%d, R10", mr*4)
		p("\tDECQ R9")
		p("\tJNZ %s_panel", name)
		p("%s_done:", name)
	}
	p("\t%s", vzero)
	p("\tRET")
	p("")
}

// e4m3Consts are the E4M3 decoding constants: the magnitude mask, the sign
// bit, 2^120 (the exponent re-bias as a factor) and the NaN pattern.
var e4m3Consts = []string{"0x7F", "0x80000000", "0x7B800000", "0x7FC00000"}

// decodeConsts broadcasts e4m3Consts into Z20–Z23.
func decodeConsts() {
	for i, c := range e4m3Consts {
		p("\tMOVL $%s, R8", c)
		p("\tVPBROADCASTD R8, Z%d", 20+i)
	}
}

// decode16 decodes the 16 E4M3 bytes at mem into Z2 (uses Z0-Z3, K1 and
// the constants of decodeConsts).
func decode16(mem string) {
	p("\tVPMOVZXBD %s, Z0", mem)
	p("\tVPANDD Z20, Z0, Z1")
	p("\tVPSLLD $20, Z1, Z2")
	p("\tVMULPS Z22, Z2, Z2")
	p("\tVPSLLD $24, Z0, Z3")
	p("\tVPANDD Z21, Z3, Z3")
	p("\tVPORD Z3, Z2, Z2")
	p("\tVPCMPEQD Z20, Z1, K1")
	p("\tVMOVDQA32 Z23, K1, Z2")
}

// decodeRows decodes a block of rows: dst[r*ldd+p] = e4m3(src[r*lds+p]) for
// r < rows, p < kc (kc a positive multiple of 16), prefetching the next 128
// bytes of every source row (the next K block) into L2.
//
// A row of exactly 128 codes without NaN codes (0x7F, 0xFF; checked with two
// byte compares) takes the fast path: sign-extend each code to 32 bits,
// shift left by 20 and keep the sign and the 7 magnitude bits
// (0x87F00000), which places exponent and mantissa in a float32 whose value
// times 2^120 is the E4M3 value, subnormals included. Other rows take the
// general path, which also maps NaN codes to NaN.
func decodeRows() {
	p("// func decodeRowsAVX512(dst *float32, ldd int, src *byte, lds int, rows, kc int)")
	p("TEXT ·decodeRowsAVX512(SB), NOSPLIT, $0-48")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ ldd+8(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ src+16(FP), SI")
	p("\tMOVQ lds+24(FP), R10")
	p("\tMOVQ rows+32(FP), BX")
	p("\tMOVQ kc+40(FP), R11")
	p("\tMOVQ R11, R13")
	p("\tSHRQ $4, R11")
	p("\tTESTQ BX, BX")
	p("\tJZ rows_done")
	decodeConsts()
	p("\tMOVL $0x87F00000, R8")
	p("\tVPBROADCASTD R8, Z24")
	p("\tMOVL $0x80808080, R8")
	p("\tVPBROADCASTD R8, Z25")
	p("\tVPTERNLOGD $0xFF, Z26, Z26, Z26") // all ones: 0xFF bytes
	p("rows_row:")
	p("\tMOVQ DI, DX")
	p("\tMOVQ SI, R12")
	p("\tPREFETCHT1 128(SI)")
	p("\tPREFETCHT1 192(SI)")
	p("\tCMPQ R13, $128")
	p("\tJNE rows_slow")
	// NaN scan: (b | 0x80) == 0xFF for any byte?
	p("\tVPORD (SI), Z25, Z4")
	p("\tVPORD 64(SI), Z25, Z5")
	p("\tVPCMPEQB Z26, Z4, K2")
	p("\tVPCMPEQB Z26, Z5, K3")
	p("\tKORQ K2, K3, K2")
	p("\tKORTESTQ K2, K2")
	p("\tJNZ rows_slow")
	for i := 0; i < 8; i++ {
		p("\tVPMOVSXBD %d(SI), Z%d", 16*i, i)
	}
	for i := 0; i < 8; i++ {
		p("\tVPSLLD $20, Z%d, Z%d", i, i)
		p("\tVPANDD Z24, Z%d, Z%d", i, i)
		p("\tVMULPS Z22, Z%d, Z%d", i, i)
		p("\tVMOVUPS Z%d, %d(DX)", i, 64*i)
	}
	p("\tJMP rows_next")
	p("rows_slow:")
	p("\tMOVQ R11, CX")
	p("rows_loop:")
	decode16("0(SI)")
	p("\tVMOVUPS Z2, (DX)")
	p("\tADDQ $16, SI")
	p("\tADDQ $64, DX")
	p("\tDECQ CX")
	p("\tJNZ rows_loop")
	p("rows_next:")
	p("\tLEAQ (R12)(R10*1), SI")
	p("\tADDQ R9, DI")
	p("\tDECQ BX")
	p("\tJNZ rows_row")
	p("rows_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// transpose16 writes dst[i*ldd+j] = src[j*lds+i] for i, j < 16.
func transpose16() {
	p("// func transpose16AVX512(dst *float32, ldd int, src *float32, lds int)")
	p("TEXT ·transpose16AVX512(SB), NOSPLIT, $0-32")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ ldd+8(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ src+16(FP), SI")
	p("\tMOVQ lds+24(FP), R10")
	p("\tSHLQ $2, R10")
	for j := 0; j < 16; j++ {
		p("\tVMOVUPS (SI), Z%d", j)
		p("\tADDQ R10, SI")
	}
	// Stage 1: pairs of rows.
	for b := 0; b < 8; b++ {
		r0, r1 := 2*b, 2*b+1
		p("\tVUNPCKLPS Z%d, Z%d, Z%d", r1, r0, 16+2*b)
		p("\tVUNPCKHPS Z%d, Z%d, Z%d", r1, r0, 17+2*b)
	}
	// Stage 2: u[4g+q] = column q (within each 128-bit lane) of rows 4g..4g+3.
	for g := 0; g < 4; g++ {
		t0, t1, t2, t3 := 16+4*g, 17+4*g, 18+4*g, 19+4*g
		p("\tVUNPCKLPD Z%d, Z%d, Z%d", t2, t0, 4*g+0)
		p("\tVUNPCKHPD Z%d, Z%d, Z%d", t2, t0, 4*g+1)
		p("\tVUNPCKLPD Z%d, Z%d, Z%d", t3, t1, 4*g+2)
		p("\tVUNPCKHPD Z%d, Z%d, Z%d", t3, t1, 4*g+3)
	}
	// Stage 3: output row 4L+q gathers lane L of u[q], u[4+q], u[8+q], u[12+q].
	for q := 0; q < 4; q++ {
		p("\tVSHUFF32X4 $0x44, Z%d, Z%d, Z16", 4+q, q)
		p("\tVSHUFF32X4 $0xEE, Z%d, Z%d, Z17", 4+q, q)
		p("\tVSHUFF32X4 $0x44, Z%d, Z%d, Z18", 12+q, 8+q)
		p("\tVSHUFF32X4 $0xEE, Z%d, Z%d, Z19", 12+q, 8+q)
		p("\tVSHUFF32X4 $0x88, Z18, Z16, Z20") // L=0
		p("\tVSHUFF32X4 $0xDD, Z18, Z16, Z21") // L=1
		p("\tVSHUFF32X4 $0x88, Z19, Z17, Z22") // L=2
		p("\tVSHUFF32X4 $0xDD, Z19, Z17, Z23") // L=3
		for l := 0; l < 4; l++ {
			row := 4*l + q
			p("\tMOVQ $%d, AX", row)
			p("\tIMULQ R9, AX")
			p("\tVMOVUPS Z%d, (DI)(AX*1)", 20+l)
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// cvtBF16 converts n float32 (a multiple of 16) to bfloat16 bits exactly as
// tensor.BF16FromFloat32: round-to-nearest-even, finite overflow saturates
// to ±0x7F7F, NaN is quieted (|0x40), ±Inf stays.
func cvtBF16() {
	p("// func cvtBF16AVX512(dst *uint16, src *float32, n int)")
	p("TEXT ·cvtBF16AVX512(SB), NOSPLIT, $0-24")
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ src+8(FP), SI")
	p("\tMOVQ n+16(FP), CX")
	p("\tSHRQ $4, CX")
	p("\tJZ bf_done")
	p("\tMOVL $0x7FFFFFFF, R8")
	p("\tVPBROADCASTD R8, Z20")
	p("\tMOVL $0x7F800000, R8")
	p("\tVPBROADCASTD R8, Z21")
	p("\tMOVL $0x7FFF, R8")
	p("\tVPBROADCASTD R8, Z22")
	p("\tMOVL $1, R8")
	p("\tVPBROADCASTD R8, Z23")
	p("\tMOVL $0x8000, R8")
	p("\tVPBROADCASTD R8, Z24")
	p("\tMOVL $0x7F7F, R8")
	p("\tVPBROADCASTD R8, Z25")
	p("\tMOVL $0x40, R8")
	p("\tVPBROADCASTD R8, Z26")
	p("bf_loop:")
	p("\tVMOVDQU32 (SI), Z0")      // u
	p("\tVPANDD Z20, Z0, Z1")      // a = u & 0x7FFFFFFF
	p("\tVPSRLD $16, Z0, Z2")      // u >> 16
	p("\tVPANDD Z23, Z2, Z3")      // (u>>16)&1
	p("\tVPADDD Z22, Z3, Z3")      // + 0x7FFF
	p("\tVPADDD Z0, Z3, Z3")       // r = u + ...
	p("\tVPSRLD $16, Z3, Z4")      // r >> 16 (result)
	p("\tVPANDD Z20, Z3, Z5")      // r & 0x7FFFFFFF
	p("\tVPCMPUD $5, Z21, Z5, K1") // K1: (r&abs) >= 0x7F800000 (NLT)
	p("\tVPANDD Z24, Z2, Z6")      // sign
	p("\tVPORD Z25, Z6, Z6")       // sign | 0x7F7F
	p("\tVMOVDQA32 Z6, K1, Z4")    // saturate
	p("\tVPCMPUD $5, Z21, Z1, K2") // a >= 0x7F800000: Inf or NaN
	p("\tVMOVDQA32 Z2, K2, Z4")    // u >> 16
	p("\tVPCMPUD $6, Z21, Z1, K3") // a > 0x7F800000: NaN (NLE)
	p("\tVPORD Z26, Z2, Z7")
	p("\tVMOVDQA32 Z7, K3, Z4") // quiet NaN
	p("\tVPMOVDW Z4, (DI)")
	p("\tADDQ $64, SI")
	p("\tADDQ $32, DI")
	p("\tDECQ CX")
	p("\tJNZ bf_loop")
	p("bf_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// peak writes a register-only FMA loop over nacc independent accumulators:
// the machine's float32 FMA peak (2·lanes·nacc FLOP per iteration).
func peak(name, reg string, nacc, lanes int) {
	p("// func %s(n int)", name)
	p("// Runs n iterations of %d independent register-only VFMADD231PS (%d FLOP each).", nacc, 2*lanes)
	p("TEXT ·%s(SB), NOSPLIT, $0-8", name)
	p("\tMOVQ n+0(FP), CX")
	for i := 0; i < nacc; i++ {
		p("\tVXORPS %s%d, %s%d, %s%d", reg, i, reg, i, reg, i)
	}
	p("\tVXORPS %s%d, %s%d, %s%d", reg, nacc, reg, nacc, reg, nacc)
	p("\tVXORPS %s%d, %s%d, %s%d", reg, nacc+1, reg, nacc+1, reg, nacc+1)
	p("\tTESTQ CX, CX")
	p("\tJZ %s_done", name)
	p("%s_loop:", name)
	for i := 0; i < nacc; i++ {
		p("\tVFMADD231PS %s%d, %s%d, %s%d", reg, nacc, reg, nacc+1, reg, i)
	}
	p("\tDECQ CX")
	p("\tJNZ %s_loop", name)
	p("%s_done:", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// header is the first lines of every generated file.
const header = "// Code generated by go run ./gen; DO NOT EDIT.\n\n//go:build amd64 && !noasm\n\n#include \"textflag.h\"\n\n"

// gemmFile returns gemm_amd64.s.
func gemmFile() string {
	w.Reset()
	// AVX-512: 32 rows (2 zmm) × 12 columns = 24 accumulators Z0-Z23, A in
	// Z24-Z25, broadcasts rotate over Z26-Z31.
	micro("microAVX512", "Z", 2, 16, 12, 26, 6, 1, "VPXORD", "VZEROUPPER")
	// AVX2: 16 rows (2 ymm) × 6 columns = 12 accumulators Y0-Y11, A in
	// Y12-Y13, broadcasts in Y14-Y15.
	micro("microAVX2", "Y", 2, 8, 6, 14, 2, avx2Unroll, "VPXOR", "VZEROUPPER")
	// The same kernel over a column of micro-tiles, one call per column.
	microKernel("microPanelsAVX2", "Y", 2, 8, 6, 14, 2, avx2Unroll, "VPXOR", "VZEROUPPER", true)

	decodeRows()
	transpose16()
	cvtBF16()
	decodeRowsAVX2()
	transposeAVX2()
	cvtBF16AVX2()
	e2m1AVX512()
	e2m1AVX2()
	peak("peakAVX512", "Z", 24, 16)
	peak("peakAVX2", "Y", 12, 8)
	return header + w.String()
}

// files returns every generated file by name: the assembly, and the Go
// declarations of its functions (asm_amd64.go) with their stand-ins for
// builds without assembly (asm_stub.go), both taken from the "// func"
// comment that precedes every TEXT symbol.
func files() map[string]string {
	out := map[string]string{
		"gemm_amd64.s":       gemmFile(),
		"mla_avx512_amd64.s": header + mlaFile(zmm, mlaAVX512, kern4(zmm, 4, "kern4x64", "loop4", "store4", true, false), zmmLabels),
		"mla_avx2_amd64.s": header + "// AVX2+FMA twins of the AVX-512 kernels, for x86-64 CPUs without AVX-512.\n\n" +
			mlaFile(ymm, mlaAVX2, kern4(ymm, 2, "kern4x16avx2", "a2loop", "a2store", false, true), ymmLabels),
		"bf16_amd64.s": header + bf16Kernels(),
		"copy_amd64.s": header + copyKernels(),
	}
	var sigs []string
	for _, name := range []string{"gemm_amd64.s", "mla_avx512_amd64.s", "mla_avx2_amd64.s", "bf16_amd64.s", "copy_amd64.s"} {
		sigs = append(sigs, signatures(out[name])...)
	}
	out["asm_amd64.go"], out["asm_stub.go"] = goFiles(sigs)
	return out
}

// signatures returns the Go signatures ("name(params) results") of the
// TEXT symbols of an assembly file, from the "// func" comment before each;
// it panics if a TEXT symbol has none (a generator bug).
func signatures(asm string) []string {
	var sigs []string
	last := ""
	for _, line := range strings.Split(asm, "\n") {
		if rest, ok := strings.CutPrefix(line, "// func "); ok {
			last = rest
			continue
		}
		rest, ok := strings.CutPrefix(line, "TEXT ·")
		if !ok {
			continue
		}
		name := rest[:strings.Index(rest, "(SB)")]
		if !strings.HasPrefix(last, name+"(") {
			panic("gen: TEXT " + name + " has no // func comment")
		}
		// The signature ends at the parameters' closing parenthesis plus an
		// optional result type; a note may follow after two spaces.
		end := strings.Index(last, ")") + 1
		if r, _, _ := strings.Cut(last[end:], "  "); strings.TrimSpace(r) != "" {
			end += len(r)
		}
		sigs = append(sigs, strings.TrimSpace(last[:end]))
		last = ""
	}
	return sigs
}

// goFiles returns the declarations of the assembly functions and their
// panicking stand-ins for builds without assembly (never called: Select
// offers only the generic level there).
func goFiles(sigs []string) (decls, stubs string) {
	imp := ""
	for _, s := range sigs {
		if strings.Contains(s, "tensor.") {
			imp = "import \"github.com/fireflyer-go/fireflyer/tensor\"\n\n"
		}
	}
	const gen = "// Code generated by go run ./gen; DO NOT EDIT.\n\n"
	var d, st strings.Builder
	d.WriteString(gen + "//go:build amd64 && !noasm\n\npackage kernels\n\n" + imp)
	d.WriteString("// asmBuild reports whether this build has the assembly kernels.\nconst asmBuild = true\n")
	st.WriteString(gen + "//go:build !amd64 || noasm\n\npackage kernels\n\n" + imp)
	st.WriteString("// asmBuild reports whether this build has the assembly kernels.\nconst asmBuild = false\n")
	for _, s := range sigs {
		fmt.Fprintf(&d, "\n//go:noescape\nfunc %s\n", s)
		fmt.Fprintf(&st, "\nfunc %s { panic(\"kernels: no assembly in this build\") }\n", s)
	}
	return gofmt(d.String()), gofmt(st.String())
}

// gofmt formats generated Go source; it panics on a syntax error (a
// generator bug).
func gofmt(src string) string {
	b, err := format.Source([]byte(src))
	if err != nil {
		panic("gen: " + err.Error())
	}
	return string(b)
}

func main() {
	dir := flag.String("dir", ".", "the directory of package kernels")
	check := flag.Bool("check", false, "compare the files in -dir with the generator's output instead of writing them")
	flag.IntVar(&qkPrefetchAVX2, "qk-prefetch-avx2", 9216, "prefetch distance in bytes of the AVX2 QK kernel")
	flag.IntVar(&avx2Unroll, "avx2-unroll", 2, "k-loop unrolling of the AVX2 GEMM micro-kernel (1 or 2)")
	flag.IntVar(&prefetchA, "prefetch", 0, "prefetch distance in bytes of the packed A panel in the GEMM micro-kernels (0: none)")
	flag.Parse()
	stale := 0
	for name, want := range files() {
		path := filepath.Join(*dir, name)
		if *check {
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, []byte(want)) {
				fmt.Fprintf(os.Stderr, "gen: %s differs from the generator's output (run go generate ./internal/kernels)\n", path)
				stale++
			}
			continue
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	if stale > 0 {
		os.Exit(1)
	}
}
