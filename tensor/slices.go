package tensor

import (
	"math"
	"sync"

	"github.com/x448/float16"
)

// The slice conversions below write min(len(dst), len(src)) elements and
// return that count. Decoding FP8 uses 256-entry tables; encoding is the
// scalar conversion inlined in a loop (its rounding is branch-free apart from
// conditional moves).

// DecodeE4M3 writes the float32 value of each src[i] into dst[i].
func DecodeE4M3(dst []float32, src []E4M3) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = e4m3Decode[b]
	}
	return n
}

// DecodeE5M2 writes the float32 value of each src[i] into dst[i].
func DecodeE5M2(dst []float32, src []E5M2) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = e5m2Decode[b]
	}
	return n
}

// DecodeBF16 writes the float32 value of each src[i] into dst[i].
func DecodeBF16(dst []float32, src []BF16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = math.Float32frombits(uint32(b) << 16)
	}
	return n
}

var (
	f16TableOnce sync.Once
	f16Table     []float32
)

func f16DecodeTable() []float32 {
	f16TableOnce.Do(func() {
		f16Table = make([]float32, 1<<16)
		for i := range f16Table {
			f16Table[i] = float16.Frombits(uint16(i)).Float32()
		}
	})
	return f16Table
}

// DecodeF16 writes the float32 value of each src[i] into dst[i] (through a
// 65,536-entry table built on first use).
func DecodeF16(dst []float32, src []F16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	t := f16DecodeTable()
	for i, h := range src {
		dst[i] = t[h]
	}
	return n
}

// EncodeE4M3 writes E4M3FromFloat32(src[i]) (saturating) into dst[i].
func EncodeE4M3(dst []E4M3, src []float32) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, f := range src {
		dst[i] = E4M3FromFloat32(f)
	}
	return n
}

// EncodeE4M3Scaled writes E4M3FromFloat32(src[i]·mul) into dst[i]: the inner
// loop of a quantizer, where mul is the reciprocal of the block's scale.
func EncodeE4M3Scaled(dst []E4M3, src []float32, mul float32) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, f := range src {
		dst[i] = E4M3FromFloat32(f * mul)
	}
	return n
}

// EncodeE5M2 writes E5M2FromFloat32(src[i]) (saturating) into dst[i].
func EncodeE5M2(dst []E5M2, src []float32) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, f := range src {
		dst[i] = E5M2FromFloat32(f)
	}
	return n
}

// EncodeBF16 writes BF16FromFloat32(src[i]) (round-to-nearest-even,
// saturating finite overflow) into dst[i].
func EncodeBF16(dst []BF16, src []float32) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, f := range src {
		dst[i] = BF16FromFloat32(f)
	}
	return n
}

// EncodeF16 writes F16FromFloat32(src[i]) into dst[i].
func EncodeF16(dst []F16, src []float32) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, f := range src {
		dst[i] = F16FromFloat32(f)
	}
	return n
}
