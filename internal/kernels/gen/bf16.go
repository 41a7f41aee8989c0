package main

import (
	"fmt"
	"strings"
)

// bf16Kernels returns the body of bf16_amd64.s: the AVX2 BF16 combine
// kernels of package ep (axpy into float32, float32 to BF16, fused row
// sums). Each handles 16 elements a step as two ymm halves u = 0, 1, so
// every step below is written once and emitted for both halves; the
// rounding to BF16 that two of them share is an assembler macro.
func bf16Kernels() string {
	var b strings.Builder
	q := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	y := func(i int) string { return fmt.Sprintf("Y%d", i) }
	// both emits format for the two halves; %[1]s is the register base+u
	// of each base in regs, and %[k]s with k > len(regs) the extra args.
	both := func(format string, regs ...int) {
		for u := 0; u < 2; u++ {
			args := make([]any, len(regs))
			for i, r := range regs {
				args[i] = y(r + u)
			}
			q("\t"+format, args...)
		}
	}
	// widen loads 16 BF16 from mem into dst, dst+1 as float32.
	widen := func(mem string, dst int) {
		for u := 0; u < 2; u++ {
			q("\tVPMOVZXWD %s%s, %s", off(16*u), mem, y(dst+u))
		}
		both("VPSLLD $16, %[1]s, %[1]s", dst)
	}
	// The rounding constants and the rounding itself are the same in
	// toBF16AVX2 and sumBF16AVX2: two assembler macros, defined once at the
	// top of the file. macro writes the lines body emits as the definition
	// of head, one instruction a line, joined by "; \".
	macro := func(head string, body func()) {
		saved := b.String()
		b.Reset()
		body()
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		b.Reset()
		b.WriteString(saved)
		q("#define %s \\", head)
		for i, l := range lines {
			end := "; \\"
			if i == len(lines)-1 {
				end = ""
			}
			q("%s%s", l, end)
		}
	}
	q("// BF16_CONSTS broadcasts the rounding constants: Y8 ones, Y9 0x7FFF,")
	q("// Y10 the NaN pattern.")
	macro("BF16_CONSTS", func() {
		for i, c := range []string{"1", "0x7FFF", "0x7FC0"} {
			q("\tMOVL $%s, AX", c)
			q("\tVMOVD AX, X%d", 8+i)
			q("\tVPBROADCASTD X%d, Y%d", 8+i, 8+i)
		}
	})
	q("")
	q("// ROUND_BF16(dst) stores Y0, Y1 rounded to BF16 at dst (torch's round to")
	q("// nearest even, NaN to 0x7FC0), using Y2-Y6.")
	macro("ROUND_BF16(dst)", func() {
		both("VPSRLD $16, %s, %s", 0, 2)
		both("VPAND Y8, %[1]s, %[1]s", 2)
		both("VPADDD Y9, %[1]s, %[1]s", 2)
		both("VPADDD %s, %s, %[2]s", 0, 2)
		both("VPSRLD $16, %[1]s, %[1]s", 2)
		both("VCMPPS $3, %[1]s, %[1]s, %[2]s", 0, 4)
		both("VBLENDVPS %s, Y10, %s, %[2]s", 4, 2)
		q("\tVPACKUSDW Y3, Y2, Y6")
		q("\tVPERMQ $0xD8, Y6, Y6")
		q("\tVMOVDQU Y6, dst")
	})
	q("")
	roundConsts := func() { q("\tBF16_CONSTS") }
	round := func(mem string) { q("\tROUND_BF16(%s)", mem) }
	tail := func(loop string) {
		q("\tSUBQ $16, CX")
		q("\tJNZ %s", loop)
		q("\tVZEROUPPER")
		q("\tRET")
	}

	q("// func axpyBF16AVX2(acc *float32, w float32, src *tensor.BF16, n int)  (n a multiple of 16)")
	q("TEXT ·axpyBF16AVX2(SB), NOSPLIT, $0-32")
	q("\tMOVQ acc+0(FP), DI")
	q("\tVBROADCASTSS w+8(FP), Y2")
	q("\tMOVQ src+16(FP), SI")
	q("\tMOVQ n+24(FP), CX")
	q("axpy_loop:")
	widen("(SI)", 0)
	both("VMULPS Y2, %[1]s, %[1]s", 0)
	for u := 0; u < 2; u++ {
		q("\tVADDPS %s(DI), %s, %[2]s", off(32*u), y(u))
	}
	for u := 0; u < 2; u++ {
		q("\tVMOVUPS %s, %s(DI)", y(u), off(32*u))
	}
	q("\tADDQ $32, SI")
	q("\tADDQ $64, DI")
	tail("axpy_loop")

	q("")
	q("// func toBF16AVX2(dst *tensor.BF16, src *float32, n int)  (n a multiple of 16)")
	q("// Round to nearest even as torch: u + 0x7FFF + ((u>>16)&1), then >> 16;")
	q("// NaN becomes 0x7FC0.")
	q("TEXT ·toBF16AVX2(SB), NOSPLIT, $0-24")
	q("\tMOVQ dst+0(FP), DI")
	q("\tMOVQ src+8(FP), SI")
	q("\tMOVQ n+16(FP), CX")
	roundConsts()
	q("to_loop:")
	for u := 0; u < 2; u++ {
		q("\tVMOVUPS %s(SI), %s", off(32*u), y(u))
	}
	round("(DI)")
	q("\tADDQ $64, SI")
	q("\tADDQ $32, DI")
	tail("to_loop")

	q("")
	q("// func sumBF16AVX2(dst *tensor.BF16, rows *[]tensor.BF16, nrows int, n int)")
	q("// dst[i] = bf16(Σ_r float32(rows[r][i])), summed in row order; nrows ≥ 1,")
	q("// n a multiple of 16.")
	q("TEXT ·sumBF16AVX2(SB), NOSPLIT, $0-32")
	q("\tMOVQ dst+0(FP), DI")
	q("\tMOVQ rows+8(FP), SI")
	q("\tMOVQ nrows+16(FP), R9")
	q("\tMOVQ n+24(FP), CX")
	roundConsts()
	q("\tXORQ DX, DX           // byte offset into the rows")
	q("sum_loop:")
	q("\tMOVQ (SI), AX")
	widen("(AX)(DX*1)", 0)
	q("\tMOVQ SI, R10")
	q("\tMOVQ R9, R11")
	q("\tDECQ R11")
	q("\tJZ sum_convert")
	q("sum_inner:")
	q("\tADDQ $24, R10")
	q("\tMOVQ (R10), AX")
	widen("(AX)(DX*1)", 2)
	both("VADDPS %s, %s, %[2]s", 2, 0)
	q("\tDECQ R11")
	q("\tJNZ sum_inner")
	q("sum_convert:")
	round("(DI)(DX*1)")
	q("\tADDQ $32, DX")
	tail("sum_loop")
	return b.String()
}
