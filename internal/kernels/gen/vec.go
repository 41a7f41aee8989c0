package main

import (
	"fmt"
	"strings"
)

// The streaming vector kernels of the attention path come in two widths
// from one template each: zmm (16 lanes, AVX-512) and ymm (8 lanes, AVX2).

// width is a vector width: register prefix, lanes, log2(lanes), the
// register that holds a broadcast scalar, and how names and labels of that
// width are spelt.
type width struct {
	reg         string // "Z" or "Y"
	lanes       int
	shift       int
	bcast       string              // broadcast register
	name        func(string) string // kernel name from its stem
	prefetchCvt bool                // cvtBF16 prefetches 2 KiB ahead
}

var (
	zmm = width{reg: "Z", lanes: 16, shift: 4, bcast: "Z31",
		name: func(s string) string { return s + "x16" }, prefetchCvt: true}
	ymm = width{reg: "Y", lanes: 8, shift: 3, bcast: "Y15",
		name: func(s string) string { return s + "x8avx2" }}
)

// vecKernels returns the streaming kernels of width v, keyed by name.
func vecKernels(v width, labels map[string]string) map[string]string {
	out := map[string]string{}
	var b strings.Builder
	q := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	r := func(i int) string { return fmt.Sprintf("%s%d", v.reg, i) }
	vb := 4 * v.lanes // vector bytes
	// emit writes kernel stem: its "// func" line (the name, then sig), its
	// TEXT line with an argument frame of frame bytes, then body.
	emit := func(stem, sig string, frame int, body func(l string)) {
		b.Reset()
		q("// func %s%s", v.name(stem), sig)
		q("TEXT ·%s(SB), NOSPLIT, $0-%d", v.name(stem), frame)
		body(labels[stem])
		out[v.name(stem)] = strings.TrimSuffix(b.String(), "\n")
	}
	note := fmt.Sprintf("n multiple of %d", v.lanes)
	// count loads n/lanes into CX and skips to done when it is 0.
	count := func(nOff int, l string) {
		q("\tMOVQ n+%d(FP), CX", nOff)
		q("\tSHRQ $%d, CX", v.shift)
		q("\tJZ   %sdone", l)
	}
	tail := func(l string) {
		q("\tDECQ CX")
		q("\tJNZ  %sloop", l)
		q("%sdone:", l)
		q("\tVZEROUPPER")
		q("\tRET")
	}
	emit("cvtBF16", fmt.Sprintf("(dst *float32, src *uint16, n int)   %s", note), 24, func(l string) {
		q("\tMOVQ dst+0(FP), DI")
		q("\tMOVQ src+8(FP), SI")
		count(16, l)
		q("%sloop:", l)
		if v.prefetchCvt {
			q("\tPREFETCHT0 2048(SI)")
		}
		q("\tVPMOVZXWD (SI), %s", r(0))
		q("\tVPSLLD $16, %s, %s", r(0), r(0))
		q("\tVMOVUPS %s, (DI)", r(0))
		q("\tADDQ $%d, SI", vb/2)
		q("\tADDQ $%d, DI", vb)
		tail(l)
	})
	f16c := ""
	if v.reg == "Y" {
		f16c = " (F16C)"
	}
	emit("cvtF16", fmt.Sprintf("(dst *float32, src *uint16, n int)   %s%s", note, f16c), 24, func(l string) {
		q("\tMOVQ dst+0(FP), DI")
		q("\tMOVQ src+8(FP), SI")
		count(16, l)
		q("%sloop:", l)
		q("\tVCVTPH2PS (SI), %s", r(0))
		q("\tVMOVUPS %s, (DI)", r(0))
		q("\tADDQ $%d, SI", vb/2)
		q("\tADDQ $%d, DI", vb)
		tail(l)
	})
	emit("dot", fmt.Sprintf("(a, b *float32, n int) float32   %s", note), 28, func(l string) {
		q("\tMOVQ a+0(FP), SI")
		q("\tMOVQ b+8(FP), DI")
		q("\tMOVQ n+16(FP), CX")
		for i := 0; i < 4; i++ {
			q("\tVXORPS %s, %s, %s", r(i), r(i), r(i))
		}
		q("\tCMPQ CX, $%d", 4*v.lanes)
		q("\tJLT  %stail", l)
		q("%sloop:", l)
		for i := 0; i < 4; i++ {
			q("\tVMOVUPS %s(SI), %s", off(i*vb), r(4+i))
		}
		for i := 0; i < 4; i++ {
			q("\tVFMADD231PS %s(DI), %s, %s", off(i*vb), r(4+i), r(i))
		}
		q("\tADDQ $%d, SI", 4*vb)
		q("\tADDQ $%d, DI", 4*vb)
		q("\tSUBQ $%d, CX", 4*v.lanes)
		q("\tCMPQ CX, $%d", 4*v.lanes)
		q("\tJGE  %sloop", l)
		q("%stail:", l)
		q("\tTESTQ CX, CX")
		q("\tJZ   %ssum", l)
		q("\tVMOVUPS (SI), %s", r(4))
		q("\tVFMADD231PS (DI), %s, %s", r(4), r(0))
		q("\tADDQ $%d, SI", vb)
		q("\tADDQ $%d, DI", vb)
		q("\tSUBQ $%d, CX", v.lanes)
		q("\tJMP  %stail", l)
		q("%ssum:", l)
		q("\tVADDPS %s, %s, %s", r(1), r(0), r(0))
		q("\tVADDPS %s, %s, %s", r(3), r(2), r(2))
		q("\tVADDPS %s, %s, %s", r(2), r(0), r(0))
		if v.reg == "Z" {
			q("\tVEXTRACTF32X8 $1, Z0, Y1") // AVX512DQ
			q("\tVADDPS Y1, Y0, Y0")
		}
		q("\tVEXTRACTF128 $1, Y0, X1")
		q("\tVADDPS X1, X0, X0")
		q("\tVHADDPS X0, X0, X0")
		q("\tVHADDPS X0, X0, X0")
		q("\tVMOVSS X0, ret+24(FP)")
		q("\tVZEROUPPER")
		q("\tRET")
	})
	emit("axpy", fmt.Sprintf("(alpha float32, x, y *float32, n int)   %s", note), 32, func(l string) {
		q("\tVBROADCASTSS alpha+0(FP), %s", v.bcast)
		q("\tMOVQ x+8(FP), SI")
		q("\tMOVQ y+16(FP), DI")
		count(24, l)
		q("%sloop:", l)
		q("\tVMOVUPS (SI), %s", r(0))
		q("\tVFMADD213PS (DI), %s, %s", v.bcast, r(0))
		q("\tVMOVUPS %s, (DI)", r(0))
		q("\tADDQ $%d, SI", vb)
		q("\tADDQ $%d, DI", vb)
		tail(l)
	})
	emit("scal", fmt.Sprintf("(alpha float32, x *float32, n int)   %s", note), 24, func(l string) {
		q("\tVBROADCASTSS alpha+0(FP), %s", v.bcast)
		q("\tMOVQ x+8(FP), SI")
		count(16, l)
		q("%sloop:", l)
		q("\tVMULPS (SI), %s, %s", v.bcast, r(0))
		q("\tVMOVUPS %s, (SI)", r(0))
		q("\tADDQ $%d, SI", vb)
		tail(l)
	})
	emit("maxInto", fmt.Sprintf("(dst, src *float32, n int)   dst = max(dst, src); %s", note), 24, func(l string) {
		q("\tMOVQ dst+0(FP), DI")
		q("\tMOVQ src+8(FP), SI")
		count(16, l)
		q("%sloop:", l)
		q("\tVMOVUPS (DI), %s", r(0))
		q("\tVMAXPS (SI), %s, %s", r(0), r(0))
		q("\tVMOVUPS %s, (DI)", r(0))
		q("\tADDQ $%d, SI", vb)
		q("\tADDQ $%d, DI", vb)
		tail(l)
	})
	return out
}

// off writes a memory offset as the hand-written kernels did: empty for 0.
func off(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// Label stems of the streaming kernels (kept from the hand-written files).
var (
	zmmLabels = map[string]string{"cvtBF16": "cvtb", "cvtF16": "cvth", "dot": "dot", "axpy": "axpy", "scal": "scal", "maxInto": "mx"}
	ymmLabels = map[string]string{"cvtBF16": "cb2", "cvtF16": "ch2", "dot": "d2", "axpy": "ax2", "scal": "sc2", "maxInto": "mx2"}
)
