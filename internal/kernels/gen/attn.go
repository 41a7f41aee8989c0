package main

import (
	"fmt"
	"strings"
)

// The attention kernels that are not streaming ones: the 8×16 GEMM
// micro-kernel, exp2 with accumulate, and the fused BF16 QK (scores) and
// PV (weighted values) kernels over paged keys, each family from one
// template over its vector width, accumulator count and row count.

// emitter collects the lines of one kernel.
type emitter struct {
	b strings.Builder
	v width
}

// q writes one line.
func (e *emitter) q(format string, args ...any) { fmt.Fprintf(&e.b, format+"\n", args...) }

// r names vector register i of the emitter's width.
func (e *emitter) r(i int) string { return fmt.Sprintf("%s%d", e.v.reg, i) }

// jmp writes a branch with its operand aligned as the kernels spell it.
func (e *emitter) jmp(op, label string) { e.q("\t%-4s %s", op, label) }

// args loads the Go arguments: each "name reg" pair at 8-byte offsets.
func (e *emitter) args(pairs ...string) {
	for i, p := range pairs {
		name, reg, _ := strings.Cut(p, " ")
		e.q("\tMOVQ %s+%d(FP), %s", name, 8*i, reg)
	}
}

// widen loads len(dst) BF16 vectors from consecutive memory at base and
// widens them to float32 in the registers dst.
func (e *emitter) widen(base string, dst []int) { e.widenAt(0, base, dst) }

// widenAt is widen from byte offset at of base.
func (e *emitter) widenAt(at int, base string, dst []int) {
	for i, d := range dst {
		e.q("\tVPMOVZXWD %s%s, %s", off(at+2*e.v.lanes*i), base, e.r(d))
	}
	for _, d := range dst {
		e.q("\tVPSLLD $16, %s, %s", e.r(d), e.r(d))
	}
}

// ret ends a kernel: the done label, VZEROUPPER and RET.
func (e *emitter) ret(done string) string {
	e.q("%s:", done)
	e.q("\tVZEROUPPER")
	e.q("\tRET")
	return strings.TrimSuffix(e.b.String(), "\n")
}

// Register sets of the kernels with four and eight accumulators; the
// eight-accumulator set leaves Z4–Z7 and Z12–Z15 for the widened keys.
var (
	acc4, src4 = []int{0, 1, 2, 3}, []int{4, 5, 6, 7}
	acc8, src8 = []int{0, 1, 2, 3, 8, 9, 10, 11}, []int{4, 5, 6, 7, 12, 13, 14, 15}
)

// gemmPrologue loads the arguments of the strided GEMM micro-kernels
// (kern4x64, kern4x16avx2, kern8x16), strides scaled to bytes, with
// R12 = 2·ars and R13 = 3·ars.
var gemmPrologue = []string{
	"MOVQ k+0(FP), CX", "MOVQ a+8(FP), SI", "MOVQ ars+16(FP), R8", "SHLQ $2, R8",
	"MOVQ aks+24(FP), R9", "SHLQ $2, R9", "MOVQ b+32(FP), DI", "MOVQ ldb+40(FP), R10", "SHLQ $2, R10",
	"MOVQ c+48(FP), DX", "MOVQ ldc+56(FP), R11", "SHLQ $2, R11",
	"LEAQ (R8)(R8*1), R12", "LEAQ (R12)(R8*1), R13",
}

// kern8 returns kern8x16: C[8][16] (+)= A(8×k)·B(k×16) with one B vector
// per k step and the A elements broadcast from memory into the FMAs.
func kern8() string {
	e := &emitter{v: zmm}
	e.q("// func kern8x16(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)")
	e.q("// C[8][16] (+)= A(8×k) · B(k×16); strides in elements.")
	e.q("TEXT ·kern8x16(SB), NOSPLIT, $0-65")
	for _, l := range gemmPrologue {
		e.q("\t%s", l)
	}
	e.q("\tLEAQ (SI)(R8*4), R14")
	for i := 0; i < 8; i++ {
		e.q("\tVXORPS %s, %[1]s, %[1]s", e.r(i))
	}
	e.q("loop8:")
	e.q("\tVMOVUPS (DI), Z16")
	rowOff := []string{"", "(R8*1)", "(R12*1)", "(R13*1)"}
	for i := 0; i < 8; i++ {
		e.q("\tVFMADD231PS.BCST (%s)%s, Z16, %s", []string{"SI", "R14"}[i/4], rowOff[i%4], e.r(i))
	}
	e.q("\tADDQ R9, SI")
	e.q("\tADDQ R9, R14")
	e.q("\tADDQ R10, DI")
	e.q("\tDECQ CX")
	e.jmp("JNZ", "loop8")
	cBase := []string{"DX", "BX", "R15", "AX"}
	for i := 1; i < 4; i++ {
		e.q("\tLEAQ (%s)(R11*2), %s", cBase[i-1], cBase[i])
	}
	e.q("\tMOVBLZX acc+64(FP), CX")
	e.q("\tTESTQ CX, CX")
	e.jmp("JZ", "store8")
	c := func(i int) string { return "(" + cBase[i/2] + ")" + []string{"", "(R11*1)"}[i%2] }
	for i := 0; i < 8; i++ {
		e.q("\tVADDPS %s, %s, %[2]s", c(i), e.r(i))
	}
	e.q("store8:")
	for i := 0; i < 8; i++ {
		e.q("\tVMOVUPS %s, %s", e.r(i), c(i))
	}
	e.q("\tVZEROUPPER")
	e.q("\tRET")
	return strings.TrimSuffix(e.b.String(), "\n")
}

// exp2Sub returns exp2Subx16 (zmm: the polynomial's coefficients held in
// Z20–Z28, the scaling by VSCALEFPS) or exp2Subx8avx2 (ymm: coefficients
// broadcast as needed, 2^n built in the exponent bits, clamped and flushed
// to zero below 2^-126). Both compute x = 2^(x-sh) and acc += x.
func exp2Sub(v width) string {
	e := &emitter{v: v}
	z := v.reg == "Z"
	name, l := v.name("exp2Sub"), "e2"
	if z {
		l = "exp"
		e.q("// func %s(x, sh, acc *float32, n int, coef *float32)   n multiple of 16", name)
		e.q("// x = 2^max(x-sh, -200) by 2^f (degree-7 Taylor, |f| ≤ 1/2) scaled by")
		e.q("// VSCALEFPS (which underflows to exactly 0); acc += x.")
	} else {
		e.q("// func %s(x, sh, acc *float32, n int, coef *float32)   n multiple of 8", name)
		e.q("// coef: c0..c7, then -127 (low clamp), -126 (flush-to-zero threshold), 127 (high clamp).")
		e.q("// x = 2^clamp(x-sh) built as poly(f)·2^n with the exponent bits set directly;")
		e.q("// results below 2^-126 (including 2^-Inf) are exactly 0; acc += x.")
	}
	e.q("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	e.args("x SI", "sh DX", "acc DI", "n CX", "coef AX")
	if z {
		for i := 0; i < 9; i++ {
			e.q("\tVBROADCASTSS %s(AX), Z%d", off(4*i), 20+i)
		}
	} else {
		// The exponent bias, broadcast once with VEX moves only: a legacy
		// SSE move into an X register while the upper halves are dirty
		// costs a state transition on Intel cores (it took 18% of the
		// h_q=1 decode inside the loop).
		e.q("\tMOVL $127, BX")
		e.q("\tVMOVD BX, X8")
		e.q("\tVPBROADCASTD X8, Y8")
	}
	e.q("\tSHRQ $%d, CX", v.shift)
	e.jmp("JZ", l+"done")
	e.q("%sloop:", l)
	e.q("\tVMOVUPS (SI), %s", e.r(0))
	e.q("\tVSUBPS (DX), %s, %[1]s", e.r(0))
	if z {
		e.q("\tVMAXPS Z28, Z0, Z0")
		e.q("\tVRNDSCALEPS $0, Z0, Z2")
		e.q("\tVSUBPS Z2, Z0, Z3")
		e.q("\tVMOVAPS Z27, Z4")
		for c := 6; c >= 0; c-- {
			e.q("\tVFMADD213PS Z%d, Z3, Z4", 20+c)
		}
		e.q("\tVSCALEFPS Z2, Z4, Z5")
	} else {
		e.q("\tVBROADCASTSS 32(AX), Y1")
		e.q("\tVMAXPS Y1, Y0, Y0")
		e.q("\tVBROADCASTSS 40(AX), Y1")
		e.q("\tVMINPS Y1, Y0, Y0")
		e.q("\tVBROADCASTSS 36(AX), Y1")
		e.q("\tVCMPPS $1, Y1, Y0, Y7          // Y7 = x < -126")
		e.q("\tVROUNDPS $0, Y0, Y2")
		e.q("\tVSUBPS Y2, Y0, Y3")
		e.q("\tVBROADCASTSS 28(AX), Y4")
		for c := 6; c >= 0; c-- {
			e.q("\tVBROADCASTSS %s(AX), Y1", off(4*c))
			e.q("\tVFMADD213PS Y1, Y3, Y4")
		}
		e.q("\tVCVTPS2DQ Y2, Y5")
		e.q("\tVPADDD Y8, Y5, Y5")
		e.q("\tVPSLLD $23, Y5, Y5")
		e.q("\tVMULPS Y5, Y4, Y4")
		e.q("\tVANDNPS Y4, Y7, Y4")
	}
	res := e.r(5)
	if !z {
		res = e.r(4)
	}
	e.q("\tVMOVUPS %s, (SI)", res)
	e.q("\tVADDPS (DI), %s, %s", res, e.r(6))
	e.q("\tVMOVUPS %s, (DI)", e.r(6))
	for _, p := range []string{"SI", "DX", "DI"} {
		e.q("\tADDQ $%d, %s", 4*v.lanes, p)
	}
	e.q("\tDECQ CX")
	e.jmp("JNZ", l+"loop")
	return e.ret(l + "done")
}

// qkArgs loads the arguments of the QK kernels: q R8, base R9, offs R10,
// n R11, d R12, s R13.
func (e *emitter) qkArgs() {
	e.args("q R8", "base R9", "offs R10", "n R11", "d R12", "s R13")
}

// qkKey points SI at the BF16 key row of the next token (base + offs[i]).
func (e *emitter) qkKey() {
	e.q("\tMOVQ (R10), SI")
	e.q("\tLEAQ (R9)(SI*2), SI")
}

// qkNext steps to the next token's score and offset and loops to tok.
func (e *emitter) qkNext(tok string) {
	e.q("\tADDQ $4, R13")
	e.q("\tADDQ $8, R10")
	e.q("\tDECQ R11")
	e.jmp("JNZ", tok)
}

// zero clears the registers regs.
func (e *emitter) zero(regs []int) {
	for _, i := range regs {
		e.q("\tVXORPS %s, %[1]s, %[1]s", e.r(i))
	}
}

// prefetch touches n cache lines of the key row 2304 bytes ahead.
func (e *emitter) prefetch(n int) { e.prefetchAt(n, 2304) }

// prefetchAt touches n cache lines of the key row dist bytes ahead.
func (e *emitter) prefetchAt(n, dist int) {
	for i := 0; i < n; i++ {
		e.q("\tPREFETCHT0 %d(SI)", dist+64*i)
	}
}

// qk returns the one-query-row QK kernel of width v: s[i] = Σ_c
// q[c]·bf16(base[offs[i]+c]) with len(acc) accumulators per channel step,
// a tail one vector at a time unrolled tail times, and the accumulators
// summed pairwise down to one lane. l is the label stem, step the label
// of the main loop.
func qk(v width, acc, src []int, tail, prefetch int, l, step, note string) string {
	e := &emitter{v: v}
	name := v.name("qkBF16")
	n := len(acc)
	e.q("// func %s(q *float32, base *uint16, offs *int64, n, d int, s *float32)%s", name, note)
	if v.reg == "Z" {
		e.q("// s[i] = Σ_c q[c]·bf16(base[offs[i]+c]) for i < n; d multiple of 16.")
		e.q("// Eight accumulators over 128-channel steps keep the FMA chains short.")
	}
	e.q("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	e.qkArgs()
	e.q("\tTESTQ R11, R11")
	e.jmp("JZ", l+"done")
	e.q("%stok:", l)
	e.qkKey()
	e.q("\tMOVQ R8, DI")
	e.q("\tMOVQ R12, CX")
	e.zero(acc)
	chans := n * v.lanes
	e.q("\tCMPQ CX, $%d", chans)
	e.jmp("JLT", l+"tail")
	e.q("%s%s:", l, step)
	if v.reg == "Y" {
		e.prefetchAt(prefetch, qkPrefetchAVX2)
	} else {
		e.prefetch(prefetch)
	}
	e.widen("(SI)", src)
	for i := range acc {
		e.q("\tVFMADD231PS %s(DI), %s, %s", off(4*v.lanes*i), e.r(src[i]), e.r(acc[i]))
	}
	e.q("\tADDQ $%d, SI", 2*chans)
	e.q("\tADDQ $%d, DI", 4*chans)
	e.q("\tSUBQ $%d, CX", chans)
	e.q("\tCMPQ CX, $%d", chans)
	e.jmp("JGE", l+step)
	e.q("%stail:", l)
	e.q("\tTESTQ CX, CX")
	e.jmp("JZ", l+"sum")
	for t := 0; t < tail; t++ {
		e.widen("(SI)", src[t:t+1])
		e.q("\tVFMADD231PS (DI), %s, %s", e.r(src[t]), e.r(acc[t]))
		e.q("\tADDQ $%d, SI", 2*v.lanes)
		e.q("\tADDQ $%d, DI", 4*v.lanes)
		e.q("\tSUBQ $%d, CX", v.lanes)
		if t < tail-1 {
			e.jmp("JZ", l+"sum")
		} else {
			e.jmp("JMP", l+"tail")
		}
	}
	e.q("%ssum:", l)
	for i := 4; i < n; i++ {
		e.q("\tVADDPS %s, %s, %[2]s", e.r(acc[i]), e.r(acc[i-4]))
	}
	for _, a := range [][2]int{{1, 0}, {3, 2}, {2, 0}} {
		e.q("\tVADDPS %s, %s, %[2]s", e.r(a[0]), e.r(a[1]))
	}
	if v.reg == "Z" {
		e.q("\tVEXTRACTF32X8 $1, Z0, Y1")
		e.q("\tVADDPS Y1, Y0, Y0")
	}
	e.q("\tVEXTRACTF128 $1, Y0, X1")
	e.q("\tVADDPS X1, X0, X0")
	e.q("\tVHADDPS X0, X0, X0")
	e.q("\tVHADDPS X0, X0, X0")
	e.q("\tVMOVSS X0, (R13)")
	e.qkNext(l + "tok")
	return e.ret(l + "done")
}

// qk2 returns qkBF16x16x2: two query rows (q at R8, q+d at R15) scored
// against the same keys, the widened key vectors shared by both.
func qk2() string {
	e := &emitter{v: zmm}
	e.q("// func qkBF16x16x2(q *float32, base *uint16, offs *int64, n, d int, s *float32, ss int)")
	e.q("// Two query rows (q, q+d) against the same keys: s[i] and s[ss+i]; d multiple of 16.")
	e.q("TEXT ·qkBF16x16x2(SB), NOSPLIT, $0-56")
	e.qkArgs()
	e.q("\tMOVQ ss+48(FP), R14")
	e.q("\tSHLQ $2, R14")
	e.q("\tLEAQ (R8)(R12*4), R15")
	e.q("\tTESTQ R11, R11")
	e.jmp("JZ", "qk2done")
	e.q("qk2tok:")
	e.qkKey()
	e.q("\tXORQ DX, DX")
	e.q("\tMOVQ R12, CX")
	e.zero(acc8)
	e.q("\tCMPQ CX, $64")
	e.jmp("JLT", "qk2tail")
	e.q("qk2loop:")
	e.prefetch(2)
	e.widen("(SI)", src4)
	for row, qr := range []string{"R8", "R15"} {
		for i := range src4 {
			e.q("\tVFMADD231PS %s(%s)(DX*1), %s, %s", off(64*i), qr, e.r(src4[i]), e.r(acc8[4*row+i]))
		}
	}
	e.q("\tADDQ $128, SI")
	e.q("\tADDQ $256, DX")
	e.q("\tSUBQ $64, CX")
	e.q("\tCMPQ CX, $64")
	e.jmp("JGE", "qk2loop")
	e.q("qk2tail:")
	e.q("\tTESTQ CX, CX")
	e.jmp("JZ", "qk2sum")
	e.widen("(SI)", src4[:1])
	e.q("\tVFMADD231PS (R8)(DX*1), Z4, Z0")
	e.q("\tVFMADD231PS (R15)(DX*1), Z4, Z8")
	e.q("\tADDQ $32, SI")
	e.q("\tADDQ $64, DX")
	e.q("\tSUBQ $16, CX")
	e.jmp("JMP", "qk2tail")
	e.q("qk2sum:")
	// Row 0 sums into Z0, row 1 into Z2; then both halve in step.
	for _, a := range [][3]int{{1, 0, 0}, {3, 2, 2}, {2, 0, 0}, {9, 8, 8}, {11, 10, 10}, {10, 8, 2}} {
		e.q("\tVADDPS Z%d, Z%d, Z%d", a[0], a[1], a[2])
	}
	for _, half := range []struct{ op, from, to string }{{"VEXTRACTF32X8", "Z", "Y"}, {"VEXTRACTF128", "Y", "X"}} {
		for _, r := range []int{0, 2} {
			e.q("\t%s $1, %s%d, %s%d", half.op, half.from, r, half.to, r+1)
			e.q("\tVADDPS %[1]s%[2]d, %[1]s%[3]d, %[1]s%[3]d", half.to, r+1, r)
		}
	}
	e.q("\tVHADDPS X2, X0, X0")
	e.q("\tVHADDPS X0, X0, X0")
	e.q("\tVMOVSS X0, (R13)")
	e.q("\tVEXTRACTPS $1, X0, AX")
	e.q("\tMOVL AX, (R13)(R14*1)")
	e.qkNext("qk2tok")
	return e.ret("qk2done")
}

// pv returns a PV kernel of width v: o[c] += Σ_i p[i]·bf16(base[offs[i]+c])
// over chunks of len(acc[0])·lanes channels, for one output row or two
// (acc has one register set per row; the second row is o+dv with weights
// p[ps+i]). src holds the widened values, wgt the broadcast weights.
func pv(v width, name, l, sig, comment string, acc [][]int, src, wgt []int) string {
	e := &emitter{v: v}
	rows := len(acc)
	chunk := len(acc[0]) * v.lanes
	e.q("// func %s(o, p *float32, base *uint16, offs *int64, %s", name, sig)
	if comment != "" {
		e.q("// %s", comment)
	}
	e.q("TEXT ·%s(SB), NOSPLIT, $0-%d", name, 40+8*rows)
	e.args("o DI", "p R8", "base R9", "offs R10", "n R11", "dv R12")
	out := []string{"DI"}
	if rows == 2 {
		e.q("\tMOVQ ps+48(FP), R13")
		e.q("\tSHLQ $2, R13")
		e.q("\tLEAQ (DI)(R12*4), R14")
		out = append(out, "R14")
	}
	shift := 0
	for 1<<shift < chunk {
		shift++
	}
	e.q("\tSHRQ $%d, R12", shift)
	e.q("\tXORQ BX, BX")
	e.q("%schunk:", l)
	for r := range acc {
		for i, a := range acc[r] {
			e.q("\tVMOVUPS %s(%s), %s", off(4*v.lanes*i), out[r], e.r(a))
		}
	}
	e.q("\tMOVQ R8, DX")
	e.q("\tMOVQ R10, AX")
	e.q("\tMOVQ R11, CX")
	e.q("%stok:", l)
	e.q("\tMOVQ (AX), SI")
	e.q("\tADDQ BX, SI")
	e.q("\tLEAQ (R9)(SI*2), SI")
	for r, w := range wgt {
		e.q("\tVBROADCASTSS (DX)%s, %s", []string{"", "(R13*1)"}[r], e.r(w))
	}
	// With fewer src registers than accumulators per row, the chunk is
	// widened and accumulated len(src) vectors at a time.
	for g := 0; g < len(acc[0]); g += len(src) {
		e.widenAt(2*e.v.lanes*g, "(SI)", src)
		for r := range acc {
			for i, a := range acc[r][g : g+len(src)] {
				e.q("\tVFMADD231PS %s, %s, %s", e.r(src[i]), e.r(wgt[r]), e.r(a))
			}
		}
	}
	e.q("\tADDQ $4, DX")
	e.q("\tADDQ $8, AX")
	e.q("\tDECQ CX")
	e.jmp("JNZ", l+"tok")
	for r := range acc {
		for i, a := range acc[r] {
			e.q("\tVMOVUPS %s, %s(%s)", e.r(a), off(4*v.lanes*i), out[r])
		}
	}
	for _, o := range out {
		e.q("\tADDQ $%d, %s", 4*chunk, o)
	}
	e.q("\tADDQ $%d, BX", chunk)
	e.q("\tDECQ R12")
	e.jmp("JNZ", l+"chunk")
	e.q("\tVZEROUPPER")
	e.q("\tRET")
	return strings.TrimSuffix(e.b.String(), "\n")
}

// attnKernels returns the kernels above for width v, keyed by name.
func attnKernels(v width) map[string]string {
	if v.reg == "Y" {
		return map[string]string{
			"exp2Subx8avx2": exp2Sub(ymm),
			"qkBF16x8avx2":  qk(ymm, acc8, src8, 2, 2, "q2", "loop", "   d multiple of 8"),
			"pvBF16x32avx2": pv(ymm, "pvBF16x32avx2", "p2", "n, dv int)   dv multiple of 32, n > 0", "",
				[][]int{acc4}, src4, []int{8}),
			"pvBF16x64avx2": pvUnpackAVX2(),
			"qkBF16uavx2":   qkUnpackAVX2(),
		}
	}
	return map[string]string{
		"kern8x16":    kern8(),
		"exp2Subx16":  exp2Sub(zmm),
		"qkBF16x16":   qk(zmm, acc8, src8, 2, 4, "qk", "128", ""),
		"qkBF16x16x2": qk2(),
		"pvBF16x64": pv(zmm, "pvBF16x64", "pv", "n, dv int)",
			"o[c] += Σ_i p[i]·bf16(base[offs[i]+c]) for c < dv; dv multiple of 64, n > 0.",
			[][]int{acc4}, src4, []int{8}),
		"pvBF16x64x2": pv(zmm, "pvBF16x64x2", "pv2", "n, dv, ps int)",
			"Two output rows (o, o+dv) with weights p[i] and p[ps+i]; dv multiple of 64, n > 0.",
			[][]int{acc4, {10, 11, 12, 13}}, src4, []int{8, 9}),
		"pvBF16x128": pv(zmm, "pvBF16x128", "pvw", "n, dv int)",
			"pvBF16x64 over 128-channel chunks (eight accumulators); dv multiple of 128, n > 0.",
			[][]int{acc8}, src8, []int{16}),
	}
}

// pvUnpackAVX2 returns pvBF16x64avx2: pv over 64-channel chunks with eight
// ymm accumulators, widening BF16 by interleaving with zero words
// (VPUNPCKLWD/VPUNPCKHWD: one 32-byte load and two shuffles per 16
// channels, against two widening loads and two shifts). The interleave
// works within 128-bit lanes, so the accumulator pair of channels
// [16g, 16g+16) holds channels 16g+0–3 | 16g+8–11 (lo) and 16g+4–7 |
// 16g+12–15 (hi); VPERM2F128 maps o to that order when a chunk is loaded
// and back when it is stored.
func pvUnpackAVX2() string {
	e := &emitter{v: ymm}
	lo, hi := []int{0, 2, 8, 10}, []int{1, 3, 9, 11}
	e.q("// func pvBF16x64avx2(o, p *float32, base *uint16, offs *int64, n, dv int)   dv multiple of 64, n > 0")
	e.q("// Eight accumulators (64 channels per pass over the tokens), BF16 widened by unpacking with zero.")
	e.q("TEXT ·pvBF16x64avx2(SB), NOSPLIT, $0-48")
	e.args("o DI", "p R8", "base R9", "offs R10", "n R11", "dv R12")
	e.q("\tSHRQ $6, R12")
	e.q("\tXORQ BX, BX")
	e.q("\tVPXOR Y13, Y13, Y13")
	e.q("p4chunk:")
	for g := 0; g < 4; g++ {
		e.q("\tVMOVUPS %s(DI), Y4", off(64*g))
		e.q("\tVMOVUPS %s(DI), Y5", off(64*g+32))
		e.q("\tVPERM2F128 $0x20, Y5, Y4, Y%d", lo[g])
		e.q("\tVPERM2F128 $0x31, Y5, Y4, Y%d", hi[g])
	}
	e.q("\tMOVQ R8, DX")
	e.q("\tMOVQ R10, AX")
	e.q("\tMOVQ R11, CX")
	e.q("p4tok:")
	e.q("\tMOVQ (AX), SI")
	e.q("\tADDQ BX, SI")
	e.q("\tLEAQ (R9)(SI*2), SI")
	e.q("\tVBROADCASTSS (DX), Y12")
	for g := 0; g < 4; g++ {
		raw, a, b := []int{4, 7}[g%2], []int{5, 14}[g%2], []int{6, 15}[g%2]
		e.q("\tVMOVDQU %s(SI), Y%d", off(32*g), raw)
		e.q("\tVPUNPCKLWD Y%d, Y13, Y%d", raw, a)
		e.q("\tVPUNPCKHWD Y%d, Y13, Y%d", raw, b)
		e.q("\tVFMADD231PS Y%d, Y12, Y%d", a, lo[g])
		e.q("\tVFMADD231PS Y%d, Y12, Y%d", b, hi[g])
	}
	e.q("\tADDQ $4, DX")
	e.q("\tADDQ $8, AX")
	e.q("\tDECQ CX")
	e.jmp("JNZ", "p4tok")
	for g := 0; g < 4; g++ {
		e.q("\tVPERM2F128 $0x20, Y%d, Y%d, Y4", hi[g], lo[g])
		e.q("\tVPERM2F128 $0x31, Y%d, Y%d, Y5", hi[g], lo[g])
		e.q("\tVMOVUPS Y4, %s(DI)", off(64*g))
		e.q("\tVMOVUPS Y5, %s(DI)", off(64*g+32))
	}
	e.q("\tADDQ $256, DI")
	e.q("\tADDQ $64, BX")
	e.q("\tDECQ R12")
	e.jmp("JNZ", "p4chunk")
	e.q("\tVZEROUPPER")
	e.q("\tRET")
	return strings.TrimSuffix(e.b.String(), "\n")
}

// qkUnpackAVX2 returns qkBF16uavx2: the one-row QK kernel that widens BF16
// like pvBF16x64avx2, by interleaving each 32-byte load with zero words
// (one load and two in-lane shuffles per 16 channels, against two widening
// loads and two shifts). The lanes of a 16-channel block then hold
// channels 0–3 | 8–11 (lo) and 4–7 | 12–15 (hi), so the query comes in
// that order (QKOrder) and no permute is needed per token. Eight
// accumulators over 64-channel steps, a 16-channel tail. The prefetch
// follows offs, qkAheadAVX2 rows ahead, instead of a fixed distance in
// memory: a paged cache's rows are contiguous only within a page, and past
// a page's end a distance prefetch fetches lines of an unrelated page.
func qkUnpackAVX2() string {
	e := &emitter{v: ymm}
	lo, hi := []int{0, 2, 8, 10}, []int{1, 3, 9, 11}
	e.q("// func qkBF16uavx2(q *float32, base *uint16, offs *int64, n, d int, s *float32)   d multiple of 16, q in QKOrder's order")
	e.q("// s[i] = Σ_c q[c]·bf16(base[offs[i]+c]), keys widened by unpacking with zero.")
	e.q("TEXT ·qkBF16uavx2(SB), NOSPLIT, $0-48")
	e.qkArgs()
	e.q("\tTESTQ R11, R11")
	e.jmp("JZ", "qudone")
	e.q("\tVPXOR Y13, Y13, Y13")
	e.q("qutok:")
	e.qkKey()
	// AX walks the row qkAheadAVX2 tokens ahead, found through offs (rows
	// of a paged cache are contiguous only within a page); without one it
	// walks this row, already in L1.
	e.q("\tMOVQ SI, AX")
	e.q("\tCMPQ R11, $%d", qkAheadAVX2+1)
	e.jmp("JLT", "quahead")
	e.q("\tMOVQ %d(R10), AX", 8*qkAheadAVX2)
	e.q("\tLEAQ (R9)(AX*2), AX")
	e.q("quahead:")
	e.q("\tMOVQ R8, DI")
	e.q("\tMOVQ R12, CX")
	e.zero(acc8)
	e.q("\tCMPQ CX, $64")
	e.jmp("JLT", "qutail")
	e.q("quloop:")
	e.q("\tPREFETCHT0 (AX)")
	e.q("\tPREFETCHT0 64(AX)")
	e.q("\tADDQ $128, AX")
	for g := 0; g < 4; g++ {
		raw, a, b := []int{4, 7}[g%2], []int{5, 14}[g%2], []int{6, 15}[g%2]
		e.q("\tVMOVDQU %s(SI), Y%d", off(32*g), raw)
		e.q("\tVPUNPCKLWD Y%d, Y13, Y%d", raw, a)
		e.q("\tVPUNPCKHWD Y%d, Y13, Y%d", raw, b)
		e.q("\tVFMADD231PS %s(DI), Y%d, Y%d", off(64*g), a, lo[g])
		e.q("\tVFMADD231PS %s(DI), Y%d, Y%d", off(64*g+32), b, hi[g])
	}
	e.q("\tADDQ $128, SI")
	e.q("\tADDQ $256, DI")
	e.q("\tSUBQ $64, CX")
	e.q("\tCMPQ CX, $64")
	e.jmp("JGE", "quloop")
	e.q("qutail:")
	e.q("\tTESTQ CX, CX")
	e.jmp("JZ", "qusum")
	e.q("\tVMOVDQU (SI), Y4")
	e.q("\tVPUNPCKLWD Y4, Y13, Y5")
	e.q("\tVPUNPCKHWD Y4, Y13, Y6")
	e.q("\tVFMADD231PS (DI), Y5, Y0")
	e.q("\tVFMADD231PS 32(DI), Y6, Y1")
	e.q("\tADDQ $32, SI")
	e.q("\tADDQ $64, DI")
	e.q("\tSUBQ $16, CX")
	e.jmp("JMP", "qutail")
	e.q("qusum:")
	for i := 4; i < 8; i++ {
		e.q("\tVADDPS %s, %s, %[2]s", e.r(acc8[i]), e.r(acc8[i-4]))
	}
	for _, a := range [][2]int{{1, 0}, {3, 2}, {2, 0}} {
		e.q("\tVADDPS %s, %s, %[2]s", e.r(a[0]), e.r(a[1]))
	}
	e.q("\tVEXTRACTF128 $1, Y0, X1")
	e.q("\tVADDPS X1, X0, X0")
	e.q("\tVHADDPS X0, X0, X0")
	e.q("\tVHADDPS X0, X0, X0")
	e.q("\tVMOVSS X0, (R13)")
	e.qkNext("qutok")
	return e.ret("qudone")
}
