package kernels

import (
	"fmt"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// The FP8 GEMM kernels of gemm/cpu.
//
// The micro-kernel is an outer product: A is packed as [kc][MR] (the vector
// operand), B is read row-wise from rows of stride ldb (the broadcast
// operand), and the MR×NR partial sum over kc is promoted into a
// column-major C tile with per-row and per-column scales:
//
//	c[j*ldc+i] += sa[i]*sb[j] * Σ_{p<kc} a[p*MR+i]*b[j*ldb+p]
//
// which is DeepGEMM's per-128-K promotion step (fp8_gemm.cuh) with sa the A
// (per-token) scales and sb the B (per-block) scales. The AVX-512 kernel has
// a 32×12 register tile, the AVX2, NEON and generic ones 16×6.

// MR returns the rows of the Set's GEMM micro-tile: 32 at AVX512, else 16.
func (s Set) MR() int {
	if s.level == AVX512 {
		return 32
	}
	return 16
}

// NR returns the columns of the Set's GEMM micro-tile: 12 at AVX512, else 6.
func (s Set) NR() int {
	if s.level == AVX512 {
		return 12
	}
	return 6
}

// Micro computes c[j*ldc+i] += sa[i]*sb[j] * Σ_{p<kc} a[p*MR+i]*b[j*ldb+p]
// for i < MR, j < NR (MR, NR of the Set). a holds kc·MR packed values, b NR
// rows of stride ldb ≥ kc, c NR columns of stride ldc ≥ MR. It panics if a
// slice is too short (a caller bug).
func (s Set) Micro(kc int, a, b []float32, ldb int, c []float32, ldc int, sa, sb []float32) {
	mr, nr := s.MR(), s.NR()
	if kc < 0 || len(a) < kc*mr || ldb < kc || (kc > 0 && len(b) < (nr-1)*ldb+kc) ||
		ldc < mr || len(c) < (nr-1)*ldc+mr || len(sa) < mr || len(sb) < nr {
		panic(fmt.Sprintf("kernels: Micro bounds kc=%d len(a)=%d len(b)=%d ldb=%d len(c)=%d ldc=%d", kc, len(a), len(b), ldb, len(c), ldc))
	}
	switch s.level {
	case AVX512:
		microAVX512(kc, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, unsafe.SliceData(sa), unsafe.SliceData(sb))
	case AVX2:
		microAVX2(kc, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, unsafe.SliceData(sa), unsafe.SliceData(sb))
	case NEON:
		microNEON(kc, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, unsafe.SliceData(sa), unsafe.SliceData(sb))
	default:
		microGo(mr, nr, kc, a, b, ldb, c, ldc, sa, sb)
	}
}

// MicroPanels runs Micro on a column of micro-tiles: for q < panels, the
// q-th packed A panel a[q*kc*MR:], the same B rows b, the C rows
// c[q*MR:] (stride ldc ≥ panels·MR) and the A scales sa[q*MR:], with
// Micro's results. At AVX2 it is one assembly call (microPanelsAVX2), at
// AVX512 a loop over the micro-kernel checked once, elsewhere a loop over
// Micro. It panics if a slice is too short (a caller bug).
func (s Set) MicroPanels(kc, panels int, a, b []float32, ldb int, c []float32, ldc int, sa, sb []float32) {
	mr, nr := s.MR(), s.NR()
	if panels <= 0 {
		return
	}
	if kc < 0 || len(a) < panels*kc*mr || ldb < kc || (kc > 0 && len(b) < (nr-1)*ldb+kc) ||
		ldc < panels*mr || len(c) < (nr-1)*ldc+panels*mr || len(sa) < panels*mr || len(sb) < nr {
		panic(fmt.Sprintf("kernels: MicroPanels bounds kc=%d panels=%d len(a)=%d len(b)=%d ldb=%d len(c)=%d ldc=%d", kc, panels, len(a), len(b), ldb, len(c), ldc))
	}
	switch s.level {
	case AVX2:
		microPanelsAVX2(kc, panels, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, unsafe.SliceData(sa), unsafe.SliceData(sb))
	case AVX512:
		// Checked above for all panels: call the kernel directly.
		pa, pc, psa := unsafe.SliceData(a), unsafe.SliceData(c), unsafe.SliceData(sa)
		pb, psb := unsafe.SliceData(b), unsafe.SliceData(sb)
		for q := 0; q < panels; q++ {
			microAVX512(kc, (*float32)(unsafe.Add(unsafe.Pointer(pa), 4*q*kc*mr)), pb, ldb,
				(*float32)(unsafe.Add(unsafe.Pointer(pc), 4*q*mr)), ldc, (*float32)(unsafe.Add(unsafe.Pointer(psa), 4*q*mr)), psb)
		}
	default:
		for q := 0; q < panels; q++ {
			s.Micro(kc, a[q*kc*mr:], b, ldb, c[q*mr:], ldc, sa[q*mr:], sb)
		}
	}
}

// microGo is the portable micro-kernel for any mr ≤ 64, nr.
func microGo(mr, nr, kc int, a, b []float32, ldb int, c []float32, ldc int, sa, sb []float32) {
	var acc [64]float32
	for j := 0; j < nr; j++ {
		br := b[j*ldb : j*ldb+kc]
		for i := range acc[:mr] {
			acc[i] = 0
		}
		for p, bv := range br {
			ap := a[p*mr : p*mr+mr]
			for i, av := range ap {
				acc[i] += av * bv
			}
		}
		cj := c[j*ldc : j*ldc+mr]
		for i := range cj {
			cj[i] += sa[i] * sb[j] * acc[i]
		}
	}
}

func e4m3Bytes(s []tensor.E4M3) *byte { return (*byte)(unsafe.SliceData(s)) }

// DecodeE4M3Rows decodes a block of E4M3 rows: dst[r*ldd+p] =
// float32(src[r*lds+p]) for r < rows, p < kc, with tensor.E4M3's values
// (NaN for the codes 0x7F and 0xFF). It panics if a slice is too short (a
// caller bug).
func (s Set) DecodeE4M3Rows(dst []float32, ldd int, src []tensor.E4M3, lds int, rows, kc int) {
	if rows <= 0 || kc <= 0 {
		return
	}
	if ldd < kc || lds < kc || len(dst) < (rows-1)*ldd+kc || len(src) < (rows-1)*lds+kc {
		panic(fmt.Sprintf("kernels: DecodeE4M3Rows bounds rows=%d kc=%d ldd=%d lds=%d", rows, kc, ldd, lds))
	}
	if s.level == NEON {
		kv := kc &^ 15
		for r := 0; r < rows; r++ {
			if kv > 0 {
				decodeE4M3NEON(unsafe.SliceData(dst[r*ldd:]), e4m3Bytes(src[r*lds:]), kv)
			}
			tensor.DecodeE4M3(dst[r*ldd+kv:r*ldd+kc], src[r*lds+kv:r*lds+kc])
		}
		return
	}
	if s.level == AVX2 || s.level == AVX512 {
		var kv int
		if s.level == AVX512 {
			if kv = kc &^ 15; kv > 0 {
				decodeRowsAVX512(unsafe.SliceData(dst), ldd, e4m3Bytes(src), lds, rows, kv)
			}
		} else if kv = kc &^ 7; kv > 0 {
			decodeRowsAVX2(unsafe.SliceData(dst), ldd, e4m3Bytes(src), lds, rows, kv)
		}
		if kv < kc {
			for r := 0; r < rows; r++ {
				tensor.DecodeE4M3(dst[r*ldd+kv:r*ldd+kc], src[r*lds+kv:r*lds+kc])
			}
		}
		return
	}
	for r := 0; r < rows; r++ {
		tensor.DecodeE4M3(dst[r*ldd:r*ldd+kc], src[r*lds:r*lds+kc])
	}
}

// Transpose writes dst[i*ldd+j] = src[j*lds+i] for i < rows, j < cols: it
// turns the column-major C tiles of Micro into row-major rows. It panics if
// a slice is too short (a caller bug).
func (s Set) Transpose(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if ldd < cols || lds < rows || len(dst) < (rows-1)*ldd+cols || len(src) < (cols-1)*lds+rows {
		panic(fmt.Sprintf("kernels: Transpose bounds rows=%d cols=%d ldd=%d lds=%d", rows, cols, ldd, lds))
	}
	var r16, c16 int // the rows and columns the assembly transposed
	switch s.level {
	case AVX512:
		r16, c16 = rows&^15, cols&^15
		for i := 0; i < r16; i += 16 {
			for j := 0; j < c16; j += 16 {
				transpose16AVX512(&dst[i*ldd+j], ldd, &src[j*lds+i], lds)
			}
		}
	case AVX2:
		if r16, c16 = rows&^7, cols&^7; r16 > 0 && c16 > 0 {
			transposeAVX2(unsafe.SliceData(dst), ldd, unsafe.SliceData(src), lds, r16, c16)
		}
	case NEON:
		if r16, c16 = rows&^3, cols&^3; r16 > 0 && c16 > 0 {
			transposeNEON(unsafe.SliceData(dst), ldd, unsafe.SliceData(src), lds, r16, c16)
		}
	default:
		transposeGo(dst, ldd, src, lds, rows, cols)
		return
	}
	if c16 < cols {
		transposeGo(dst[c16:], ldd, src[c16*lds:], lds, rows, cols-c16)
	}
	if r16 < rows {
		transposeGo(dst[r16*ldd:], ldd, src[r16:], lds, rows-r16, c16)
	}
}

func transposeGo(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	const b = 16
	for i0 := 0; i0 < rows; i0 += b {
		for j0 := 0; j0 < cols; j0 += b {
			for j := j0; j < min(j0+b, cols); j++ {
				s := src[j*lds:]
				for i := i0; i < min(i0+b, rows); i++ {
					dst[i*ldd+j] = s[i]
				}
			}
		}
	}
}

// EncodeBF16 writes tensor.BF16FromFloat32(src[i]) to dst[i] (round to
// nearest even, saturating finite overflow); len(dst) ≥ len(src), else it
// panics.
func (s Set) EncodeBF16(dst []tensor.BF16, src []float32) {
	dst = dst[:len(src)]
	n := 0
	switch {
	case s.level == AVX2 || s.level == AVX512:
		if n = len(src) &^ 15; n > 0 {
			if s.level == AVX512 {
				cvtBF16AVX512((*uint16)(unsafe.SliceData(dst)), unsafe.SliceData(src), n)
			} else {
				cvtBF16AVX2((*uint16)(unsafe.SliceData(dst)), unsafe.SliceData(src), n)
			}
		}
	case s.level == NEON:
		if n = len(src) &^ 7; n > 0 {
			cvtBF16NEON((*uint16)(unsafe.SliceData(dst)), unsafe.SliceData(src), n)
		}
	}
	tensor.EncodeBF16(dst[n:], src[n:])
}

// PeakLoop runs iters iterations of a register-only FMA loop of the Set's
// level and returns the float32 FLOPs it performed (2 per lane per FMA):
// the denominator of "fraction of peak" in the benchmarks. The generic level
// has no peak loop and returns 0.
func (s Set) PeakLoop(iters int) float64 {
	switch s.level {
	case AVX512:
		peakAVX512(iters)
		return float64(iters) * 24 * 32
	case AVX2:
		peakAVX2(iters)
		return float64(iters) * 12 * 16
	case NEON:
		peakNEON(iters)
		return float64(iters) * 24 * 8
	}
	return 0
}
