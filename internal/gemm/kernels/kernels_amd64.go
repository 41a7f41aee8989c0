//go:build amd64 && !noasm

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/fireflyer-go/fireflyer/tensor"
)

//go:noescape
func microAVX512(kc int, a, b *float32, ldb int, c *float32, ldc int, sa, sb *float32)

//go:noescape
func microAVX2(kc int, a, b *float32, ldb int, c *float32, ldc int, sa, sb *float32)

//go:noescape
func decodeE4M3AVX512(dst *float32, src *byte, n int)

//go:noescape
func decodeE4M3AVX2(dst *float32, src *byte, n int)

//go:noescape
func decodeRowsAVX512(dst *float32, ldd int, src *byte, lds int, rows, kc int)

//go:noescape
func transpose16AVX512(dst *float32, ldd int, src *float32, lds int)

//go:noescape
func cvtBF16AVX512(dst *uint16, src *float32, n int)

//go:noescape
func peakAVX512(n int)

//go:noescape
func peakAVX2(n int)

// PeakLoop runs a register-only FMA loop of the selected kernel set and
// returns the float32 FLOPs it performed (2 per lane per FMA): the
// denominator of "fraction of peak" in the benchmarks. The "go" set returns
// 0 (no peak loop).
func PeakLoop(iters int) float64 {
	switch Impl {
	case "avx512":
		peakAVX512(iters)
		return float64(iters) * 24 * 32
	case "avx2":
		peakAVX2(iters)
		return float64(iters) * 12 * 16
	}
	return 0
}

func init() { selectImpl(cpu.X86.HasAVX512F, cpu.X86.HasAVX2 && cpu.X86.HasFMA) }

// selectImpl picks the kernel set for the given features (tests call it to
// exercise every set the machine can run).
func selectImpl(avx512, avx2 bool) {
	switch {
	case avx512:
		Impl, MR, NR = "avx512", 32, 12
		microFn = func(kc int, a, b []float32, ldb int, c []float32, ldc int, sa, sb []float32) {
			microAVX512(kc, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, unsafe.SliceData(sa), unsafe.SliceData(sb))
		}
		decodeFn = func(dst []float32, src []uint8) {
			n := len(src) &^ 15
			if n > 0 {
				decodeE4M3AVX512(unsafe.SliceData(dst), unsafe.SliceData(src), n)
			}
			decodeGo(dst[n:], src[n:])
		}
		decodeRowsFn = func(dst []float32, ldd int, src []uint8, lds int, rows, kc int) {
			kv := kc &^ 15
			if kv > 0 {
				decodeRowsAVX512(unsafe.SliceData(dst), ldd, unsafe.SliceData(src), lds, rows, kv)
			}
			if kv < kc {
				for r := 0; r < rows; r++ {
					decodeGo(dst[r*ldd+kv:r*ldd+kc], src[r*lds+kv:r*lds+kc])
				}
			}
		}
		transposeFn = func(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
			r16, c16 := rows&^15, cols&^15
			for i := 0; i < r16; i += 16 {
				for j := 0; j < c16; j += 16 {
					transpose16AVX512(&dst[i*ldd+j], ldd, &src[j*lds+i], lds)
				}
			}
			if c16 < cols {
				transposeGo(dst[c16:], ldd, src[c16*lds:], lds, rows, cols-c16)
			}
			if r16 < rows {
				transposeGo(dst[r16*ldd:], ldd, src[r16:], lds, rows-r16, c16)
			}
		}
		bf16Fn = func(dst []tensor.BF16, src []float32) {
			n := len(src) &^ 15
			if n > 0 {
				cvtBF16AVX512((*uint16)(unsafe.SliceData(dst)), unsafe.SliceData(src), n)
			}
			bf16Go(dst[n:len(src)], src[n:])
		}
	case avx2:
		Impl, MR, NR = "avx2", 16, 6
		decodeRowsFn, transposeFn, bf16Fn = decodeRowsGo, transposeGo, bf16Go
		microFn = func(kc int, a, b []float32, ldb int, c []float32, ldc int, sa, sb []float32) {
			microAVX2(kc, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, unsafe.SliceData(sa), unsafe.SliceData(sb))
		}
		decodeFn = func(dst []float32, src []uint8) {
			n := len(src) &^ 7
			if n > 0 {
				decodeE4M3AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), n)
			}
			decodeGo(dst[n:], src[n:])
		}
	default:
		selectGo()
	}
}

// Available lists the kernel sets this machine can run, best first.
func Available() []string {
	var out []string
	if cpu.X86.HasAVX512F {
		out = append(out, "avx512")
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		out = append(out, "avx2")
	}
	return append(out, "go")
}

// Use selects a kernel set by name ("avx512", "avx2", "go") for tests and
// benchmarks; it reports false if this machine cannot run it. It is not
// safe to call while kernels run.
func Use(name string) bool {
	switch name {
	case "avx512":
		if !cpu.X86.HasAVX512F {
			return false
		}
		selectImpl(true, false)
	case "avx2":
		if !(cpu.X86.HasAVX2 && cpu.X86.HasFMA) {
			return false
		}
		selectImpl(false, true)
	case "go":
		selectGo()
	default:
		return false
	}
	return true
}
