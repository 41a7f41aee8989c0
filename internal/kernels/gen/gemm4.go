package main

import (
	"fmt"
	"strings"
)

// kern4 returns the 4-row strided GEMM micro-kernel of the attention path,
// C[4][nv·lanes] (+)= A(4×k)·B(k×nv·lanes), for vector width v: 4·nv
// accumulators, nv B vectors per k step and 4 broadcast A elements (rows
// at stride ars, steps at stride aks). kern4x64 (zmm, nv 4) and
// kern4x16avx2 (ymm, nv 2) come from it. With leaEarly the address of C's
// row 2 is computed once before the accumulate test (kern4x16avx2), else
// at row 2 of both the accumulate and the store (kern4x64).
func kern4(v width, nv int, name, loop, store string, comment, leaEarly bool) string {
	var b strings.Builder
	q := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	r := func(i int) string { return fmt.Sprintf("%s%d", v.reg, i) }
	vb := 4 * v.lanes
	q("// func %s(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)", name)
	if comment {
		q("// C[4][%d] (+)= A(4×k) · B(k×%d); strides in elements.", nv*v.lanes, nv*v.lanes)
	}
	q("TEXT ·%s(SB), NOSPLIT, $0-65", name)
	for _, l := range gemmPrologue {
		q("\t%s", l)
	}
	for i := 0; i < 4*nv; i++ {
		q("\tVXORPS %s, %s, %s", r(i), r(i), r(i))
	}
	q("%s:", loop)
	for j := 0; j < nv; j++ {
		q("\tVMOVUPS %s(DI), %s", off(j*vb), r(4*nv+j))
	}
	aRow := []string{"(SI)", "(SI)(R8*1)", "(SI)(R12*1)", "(SI)(R13*1)"}
	for i := 0; i < 4; i++ {
		q("\tVBROADCASTSS %s, %s", aRow[i], r(5*nv+i))
	}
	for i := 0; i < 4; i++ {
		for j := 0; j < nv; j++ {
			q("\tVFMADD231PS %s, %s, %s", r(4*nv+j), r(5*nv+i), r(i*nv+j))
		}
	}
	q("\tADDQ R9, SI")
	q("\tADDQ R10, DI")
	q("\tDECQ CX")
	q("\tJNZ  %s", loop)
	cRow := []string{"(DX)", "(DX)(R11*1)", "(BX)", "(BX)(R11*1)"}
	rows := func(op func(i, j int)) {
		for i := 0; i < 4; i++ {
			if i == 2 && !leaEarly {
				q("\tLEAQ (DX)(R11*2), BX")
			}
			for j := 0; j < nv; j++ {
				op(i, j)
			}
		}
	}
	if leaEarly {
		q("\tLEAQ (DX)(R11*2), BX")
	}
	q("\tMOVBLZX acc+64(FP), AX")
	q("\tTESTQ AX, AX")
	q("\tJZ   %s", store)
	rows(func(i, j int) { q("\tVADDPS %s%s, %s, %s", off(j*vb), cRow[i], r(i*nv+j), r(i*nv+j)) })
	q("%s:", store)
	rows(func(i, j int) { q("\tVMOVUPS %s, %s%s", r(i*nv+j), off(j*vb), cRow[i]) })
	q("\tVZEROUPPER")
	q("\tRET")
	return strings.TrimSuffix(b.String(), "\n")
}
