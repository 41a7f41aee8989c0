//go:build amd64 && !noasm

package simd

import (
	"golang.org/x/sys/cpu"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// HasAVX2 reports whether the assembly kernels are in use.
var HasAVX2 = cpu.X86.HasAVX2

//go:noescape
func setBF16AVX2(dst *float32, src *tensor.BF16, n int)

//go:noescape
func addBF16AVX2(acc *float32, src *tensor.BF16, n int)

//go:noescape
func axpyBF16AVX2(acc *float32, w float32, src *tensor.BF16, n int)

//go:noescape
func toBF16AVX2(dst *tensor.BF16, src *float32, n int)

//go:noescape
func sumBF16AVX2(dst *tensor.BF16, rows *[]tensor.BF16, nrows int, n int)

func sumBF16(dst []tensor.BF16, rows [][]tensor.BF16) {
	if HasAVX2 {
		if m := len(dst) &^ 15; m > 0 {
			sumBF16AVX2(&dst[0], &rows[0], len(rows), m)
			if m == len(dst) {
				return
			}
			tails := make([][]tensor.BF16, len(rows))
			for i, r := range rows {
				tails[i] = r[m:]
			}
			dst, rows = dst[m:], tails
		}
	}
	sumBF16Go(dst, rows)
}

func setBF16(dst []float32, src []tensor.BF16) {
	if HasAVX2 {
		if m := len(dst) &^ 15; m > 0 {
			setBF16AVX2(&dst[0], &src[0], m)
			dst, src = dst[m:], src[m:]
		}
	}
	setBF16Go(dst, src)
}

func addBF16(acc []float32, src []tensor.BF16) {
	if HasAVX2 {
		if m := len(acc) &^ 15; m > 0 {
			addBF16AVX2(&acc[0], &src[0], m)
			acc, src = acc[m:], src[m:]
		}
	}
	addBF16Go(acc, src)
}

func axpyBF16(acc []float32, w float32, src []tensor.BF16) {
	if HasAVX2 {
		if m := len(acc) &^ 15; m > 0 {
			axpyBF16AVX2(&acc[0], w, &src[0], m)
			acc, src = acc[m:], src[m:]
		}
	}
	axpyBF16Go(acc, w, src)
}

func toBF16(dst []tensor.BF16, src []float32) {
	if HasAVX2 {
		if m := len(dst) &^ 15; m > 0 {
			toBF16AVX2(&dst[0], &src[0], m)
			dst, src = dst[m:], src[m:]
		}
	}
	toBF16Go(dst, src)
}
