package kernels

import (
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

var (
	decodeRowsFn func(dst []float32, ldd int, src []uint8, lds int, rows, kc int)
	transposeFn  func(dst []float32, ldd int, src []float32, lds int, rows, cols int)
	bf16Fn       func(dst []tensor.BF16, src []float32)
)

// DecodeE4M3Rows decodes a block of E4M3 rows: dst[r*ldd+p] =
// e4m3(src[r*lds+p]) for r < rows, p < kc. It panics if a slice is too
// short (a caller bug).
func DecodeE4M3Rows(dst []float32, ldd int, src []uint8, lds int, rows, kc int) {
	if rows <= 0 || kc <= 0 {
		return
	}
	if ldd < kc || lds < kc || len(dst) < (rows-1)*ldd+kc || len(src) < (rows-1)*lds+kc {
		panic(fmt.Sprintf("kernels: DecodeE4M3Rows bounds rows=%d kc=%d ldd=%d lds=%d", rows, kc, ldd, lds))
	}
	decodeRowsFn(dst, ldd, src, lds, rows, kc)
}

func decodeRowsGo(dst []float32, ldd int, src []uint8, lds int, rows, kc int) {
	for r := 0; r < rows; r++ {
		decodeFn(dst[r*ldd:r*ldd+kc], src[r*lds:r*lds+kc])
	}
}

// Transpose writes dst[i*ldd+j] = src[j*lds+i] for i < rows, j < cols: it
// turns the column-major C tiles of Micro into row-major rows. It panics if
// a slice is too short.
func Transpose(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if ldd < cols || lds < rows || len(dst) < (rows-1)*ldd+cols || len(src) < (cols-1)*lds+rows {
		panic(fmt.Sprintf("kernels: Transpose bounds rows=%d cols=%d ldd=%d lds=%d", rows, cols, ldd, lds))
	}
	transposeFn(dst, ldd, src, lds, rows, cols)
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
// nearest even, saturating finite overflow); len(dst) ≥ len(src).
func EncodeBF16(dst []tensor.BF16, src []float32) {
	dst = dst[:len(src)]
	bf16Fn(dst, src)
}

func bf16Go(dst []tensor.BF16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = tensor.BF16FromFloat32(v)
	}
}
