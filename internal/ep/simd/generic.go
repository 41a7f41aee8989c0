package simd

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

func setBF16Go(dst []float32, src []tensor.BF16) {
	src = src[:len(dst)]
	for i, b := range src {
		dst[i] = math.Float32frombits(uint32(b) << 16)
	}
}

func addBF16Go(acc []float32, src []tensor.BF16) {
	src = src[:len(acc)]
	for i, b := range src {
		acc[i] += math.Float32frombits(uint32(b) << 16)
	}
}

func axpyBF16Go(acc []float32, w float32, src []tensor.BF16) {
	src = src[:len(acc)]
	for i, b := range src {
		acc[i] += float32(w * math.Float32frombits(uint32(b)<<16))
	}
}

func toBF16Go(dst []tensor.BF16, src []float32) {
	src = src[:len(dst)]
	for i, f := range src {
		dst[i] = tensor.BF16FromFloat32Torch(f)
	}
}

func sumBF16Go(dst []tensor.BF16, rows [][]tensor.BF16) {
	for i := range dst {
		s := math.Float32frombits(uint32(rows[0][i]) << 16)
		for _, r := range rows[1:] {
			s += math.Float32frombits(uint32(r[i]) << 16)
		}
		dst[i] = tensor.BF16FromFloat32Torch(s)
	}
}
