// Package simd holds the BF16 kernels of package ep's combine: widening
// BF16 rows to float32, accumulating them (optionally scaled) and rounding
// float32 back to BF16 with round-to-nearest-even. On amd64 with AVX2 they
// run in assembly; the `noasm` build tag or another architecture selects the
// pure-Go twins in generic.go, which define the results bit for bit.
package simd

import "github.com/fireflyer-go/fireflyer/tensor"

// SetBF16 writes float32(src[i]) into dst[i] for i < min(len(dst), len(src)).
func SetBF16(dst []float32, src []tensor.BF16) {
	n := min(len(dst), len(src))
	if n == 0 {
		return
	}
	setBF16(dst[:n], src[:n])
}

// AddBF16 adds float32(src[i]) to acc[i] for i < min(len(acc), len(src)).
func AddBF16(acc []float32, src []tensor.BF16) {
	n := min(len(acc), len(src))
	if n == 0 {
		return
	}
	addBF16(acc[:n], src[:n])
}

// AxpyBF16 adds w·float32(src[i]) to acc[i] (the product rounded to
// float32, then the sum) for i < min(len(acc), len(src)).
func AxpyBF16(acc []float32, w float32, src []tensor.BF16) {
	n := min(len(acc), len(src))
	if n == 0 {
		return
	}
	axpyBF16(acc[:n], w, src[:n])
}

// ToBF16 writes src[i] rounded to BF16 (round-to-nearest-even, overflow to
// ±Inf, NaN to 0x7FC0: tensor.BF16FromFloat32Torch) into dst[i].
func ToBF16(dst []tensor.BF16, src []float32) {
	n := min(len(dst), len(src))
	if n == 0 {
		return
	}
	toBF16(dst[:n], src[:n])
}

// SumBF16 writes the BF16 rounding (as ToBF16) of Σ_r float32(rows[r][i]),
// summed in row order, into dst[i]; every row must be at least len(dst)
// long. With no rows dst is zeroed. It is the fused form of SetBF16,
// AddBF16 and ToBF16 for normal-mode combine: each row is read once and the
// sum stays in registers.
func SumBF16(dst []tensor.BF16, rows [][]tensor.BF16) {
	if len(rows) == 0 {
		clear(dst)
		return
	}
	for _, r := range rows {
		if len(r) < len(dst) {
			panic("simd: SumBF16 row shorter than dst")
		}
	}
	if len(dst) == 0 {
		return
	}
	sumBF16(dst, rows)
}
