//go:build noasm || !amd64

package simd

import "github.com/fireflyer-go/fireflyer/tensor"

// HasAVX2 reports whether the assembly kernels are in use.
var HasAVX2 = false

func setBF16(dst []float32, src []tensor.BF16)             { setBF16Go(dst, src) }
func addBF16(acc []float32, src []tensor.BF16)             { addBF16Go(acc, src) }
func axpyBF16(acc []float32, w float32, src []tensor.BF16) { axpyBF16Go(acc, w, src) }
func toBF16(dst []tensor.BF16, src []float32)              { toBF16Go(dst, src) }

func sumBF16(dst []tensor.BF16, rows [][]tensor.BF16) { sumBF16Go(dst, rows) }
