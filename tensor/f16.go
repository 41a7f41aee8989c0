package tensor

import (
	"math"

	"github.com/x448/float16"
)

// F16 is an IEEE binary16 value (1 sign, 5 exponent, 10 mantissa bits), as
// torch.float16 and __half. Conversions use github.com/x448/float16.
type F16 uint16

// F16 special values.
const (
	F16MaxBits F16 = 0x7BFF // largest finite, 65504
	F16InfBits F16 = 0x7C00 // +Inf
	F16NaNBits F16 = 0x7E00 // canonical quiet NaN
)

// Float32 returns the exact float32 value of h.
func (h F16) Float32() float32 { return float16.Frombits(uint16(h)).Float32() }

// IsNaN reports whether h is a NaN.
func (h F16) IsNaN() bool { return h&0x7FFF > 0x7C00 }

// F16FromFloat32Torch converts f to binary16 with round-to-nearest-even,
// as IEEE 754 and PyTorch's c10::Half do: overflow rounds to ±Inf, NaN stays
// NaN (quiet).
func F16FromFloat32Torch(f float32) F16 {
	if f != f {
		return F16(float16.Fromfloat32(f).Bits()) | 0x0200
	}
	return F16(float16.Fromfloat32(f).Bits())
}

// F16FromFloat32 converts f to binary16 with round-to-nearest-even,
// saturating finite values beyond 65504 to ±65504 (they would otherwise round
// to ±Inf). Infinities stay infinite and NaN stays NaN.
func F16FromFloat32(f float32) F16 {
	h := F16FromFloat32Torch(f)
	if h&0x7FFF == F16InfBits && !math.IsInf(float64(f), 0) {
		return h&0x8000 | F16MaxBits
	}
	return h
}
