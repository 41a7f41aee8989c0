package kernels

import (
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The BF16 kernels of ep's combine: accumulating BF16 rows into float32
// (optionally weighted) and rounding float32 back to BF16 with
// round-to-nearest-even. They run in AVX2 assembly at the AVX2 and AVX512
// levels and in NEON assembly at the NEON level; the generic twins define
// the results bit for bit.

// AxpyBF16 adds w·float32(src[i]) to acc[i] (the product rounded to
// float32, then the sum) for i < min(len(acc), len(src)).
func (ks Set) AxpyBF16(acc []float32, w float32, src []tensor.BF16) {
	n := min(len(acc), len(src))
	acc, src = acc[:n], src[:n]
	if m := n &^ 15; (ks.level == AVX2 || ks.level == AVX512) && m > 0 {
		axpyBF16AVX2(&acc[0], w, &src[0], m)
		acc, src = acc[m:], src[m:]
	} else if ks.level == NEON && m > 0 {
		axpyBF16NEON(&acc[0], w, &src[0], m)
		acc, src = acc[m:], src[m:]
	}
	for i, b := range src {
		acc[i] += float32(w * b.Float32())
	}
}

// ToBF16 writes src[i] rounded to BF16 (round-to-nearest-even, overflow to
// ±Inf, NaN to 0x7FC0: tensor.BF16FromFloat32Torch) into dst[i] for
// i < min(len(dst), len(src)).
func (ks Set) ToBF16(dst []tensor.BF16, src []float32) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	if m := n &^ 15; (ks.level == AVX2 || ks.level == AVX512) && m > 0 {
		toBF16AVX2(&dst[0], &src[0], m)
		dst, src = dst[m:], src[m:]
	} else if ks.level == NEON && m > 0 {
		toBF16NEON(&dst[0], &src[0], m)
		dst, src = dst[m:], src[m:]
	}
	for i, f := range src {
		dst[i] = tensor.BF16FromFloat32Torch(f)
	}
}

// SumBF16 writes the BF16 rounding (as ToBF16) of Σ_r float32(rows[r][i]),
// summed in row order, into dst[i]; every row must be at least len(dst)
// long, else it panics. With no rows dst is zeroed. It is the fused form of
// widening, adding and ToBF16 for normal-mode combine: each row is read once
// and the sum stays in registers.
func (ks Set) SumBF16(dst []tensor.BF16, rows [][]tensor.BF16) {
	if len(rows) == 0 {
		clear(dst)
		return
	}
	for _, r := range rows {
		if len(r) < len(dst) {
			panic("kernels: SumBF16 row shorter than dst")
		}
	}
	if len(dst) == 0 {
		return
	}
	m := 0 // elements the vector kernel summed
	if (ks.level == AVX2 || ks.level == AVX512) && len(dst) >= 16 {
		m = len(dst) &^ 15
		sumBF16AVX2(&dst[0], &rows[0], len(rows), m)
	} else if ks.level == NEON && len(dst) >= 16 {
		m = len(dst) &^ 15
		sumBF16NEON(&dst[0], &rows[0], len(rows), m)
	}
	sumBF16Go(dst, rows, m)
}

// sumBF16Go is SumBF16 in Go for dst[from:] (the tail the vector kernel
// left, or all of dst).
func sumBF16Go(dst []tensor.BF16, rows [][]tensor.BF16, from int) {
	for i := from; i < len(dst); i++ {
		s := rows[0][i].Float32()
		for _, r := range rows[1:] {
			s += r[i].Float32()
		}
		dst[i] = tensor.BF16FromFloat32Torch(s)
	}
}
