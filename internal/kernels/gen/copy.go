package main

import (
	"fmt"
	"strings"
)

// copyKernels returns the body of copy_amd64.s: the streaming copy of
// ep's shared-memory puts, AVX2. Each step moves 128 bytes: four
// unaligned 32-byte loads, four non-temporal 32-byte stores (the
// destination must be 32-byte aligned), so that a copy far larger than the
// cache writes memory without first reading the destination's lines. The
// stores are fenced before it returns.
func copyKernels() string {
	var b strings.Builder
	q := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	q("// func streamCopyAVX2(dst, src *byte, n int)   n multiple of 128, dst 32-byte aligned")
	q("TEXT ·streamCopyAVX2(SB), NOSPLIT, $0-24")
	q("\tMOVQ dst+0(FP), DI")
	q("\tMOVQ src+8(FP), SI")
	q("\tMOVQ n+16(FP), CX")
	q("\tSHRQ $7, CX")
	q("\tJZ   sc_done")
	q("sc_loop:")
	for i := 0; i < 4; i++ {
		q("\tVMOVDQU %d(SI), Y%d", 32*i, i)
	}
	for i := 0; i < 4; i++ {
		q("\tVMOVNTDQ Y%d, %d(DI)", i, 32*i)
	}
	q("\tADDQ $128, SI")
	q("\tADDQ $128, DI")
	q("\tDECQ CX")
	q("\tJNZ  sc_loop")
	q("sc_done:")
	q("\tSFENCE")
	q("\tVZEROUPPER")
	q("\tRET")
	return b.String()
}
